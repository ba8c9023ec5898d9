"""Run the real `python -m bot run` process against the fake Bot API, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.support.fakebotapi import FakeBotApi
from tests.support.paths import ROOT

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


class BotProcess:
    """One bot process: started, waited for, stopped with a signal or killed outright."""

    def __init__(self, api: FakeBotApi, workdir: Path, **env: str) -> None:
        self.api = api
        self.workdir = workdir
        self.log_path = workdir / "bot.log"
        self.db_path = workdir / "bot.sqlite3"
        # Without PTB_TIMEDELTA (the tests' own process sets it): a deployed bot has none.
        inherited = {k: v for k, v in os.environ.items() if k != "PTB_TIMEDELTA"}
        self.env = {
            **inherited,
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "BOT_DB_PATH": str(self.db_path),
            "LOG_LEVEL": "DEBUG",
            "PYTHONUNBUFFERED": "1",
            # Never Apple's servers from a test: tests/apple_status/ serves its own feeds.
            "APPLE_STATUS_URL": "off",
            **env,
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def spawn(self, command: str) -> None:
        """Start `python -m bot <command>` with this process's environment and log."""
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                command,
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    async def start(self, *, wait: bool = True, timeout: float = 30.0) -> BotProcess:
        """Start the process; with wait, return once it is long-polling for updates."""
        await self.spawn("run")
        if wait:
            await self.api.wait_for(
                lambda: (
                    self.api.polling or (self.proc is not None and self.proc.returncode is not None)
                ),
                timeout,
                what=lambda: f"the bot to poll; log:\n{self.log()[-3000:]}",
            )
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"bot exited {self.proc.returncode}:\n{self.log()}")
        return self

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send a signal and return the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(
                f"bot did not stop within {timeout}s:\n{self.log()[-3000:]}"
            ) from None

    async def kill(self) -> None:
        """kill -9: no chance to clean up."""
        await self.stop(signal.SIGKILL)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def log(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if self.log_path.exists()
            else ""
        )

    async def __aenter__(self) -> BotProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await self.stop()
