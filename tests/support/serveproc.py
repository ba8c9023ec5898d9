"""Run the real `python -m bot serve` (webhook mode) against the fake Bot API."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp

from tests.support.botproc import BotProcess
from tests.support.fakebotapi import FakeBotApi
from tests.support.paths import ROOT
from tests.support.postgres import free_port

SECRET = "test-webhook-secret_0123456789"


class ServeProcess(BotProcess):
    """One `serve` process on 127.0.0.1 and a free port; it registers its URL at start-up."""

    def __init__(self, api: FakeBotApi, workdir: Path, name: str = "serve", **env: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        super().__init__(
            api,
            workdir,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            BOT_HOST="127.0.0.1",
            BOT_PORT=str(self.port),
            TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{self.port}/telegram",
            **env,
        )
        self.log_path = workdir / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, wait: bool = True, timeout: float = 30.0) -> ServeProcess:
        """Start the process; with wait, return once /healthz answers 200."""
        await self.spawn("serve")
        if wait:
            await self.wait_healthy(timeout)
        return self

    async def health(self) -> int:
        """Return the status of GET /healthz (0 when nothing answers)."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r,
            ):
                return r.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0

    async def wait_healthy(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:  # bounded: one try per 0.1 s until the deadline
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.log()}")
            if await self.health() == 200:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"serve not healthy after {timeout}s:\n{self.log()[-3000:]}")

    async def post(self, body: bytes, secret: str | None = SECRET) -> int:
        """POST raw bytes to /telegram as Telegram would; return the status."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/telegram",
                data=io.BytesIO(body),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as r,
        ):
            return r.status


__all__ = ["ROOT", "SECRET", "ServeProcess"]
