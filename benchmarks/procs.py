"""Start a bot process against the fake Bot API and read its CPU time and memory from /proc."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import ROOT
from tests.support.botproc import TOKEN
from tests.support.fakebotapi import FakeBotApi

OURS = ("-m", "bot", "run")
BARE = ("-m", "benchmarks.bare_bot")
AIOGRAM = ("-m", "benchmarks.bare_aiogram")
_TICKS = os.sysconf("SC_CLK_TCK")


class Proc:
    """One bot process (ours or the bare one) talking to `api`, its output in a log file."""

    def __init__(self, api: FakeBotApi, args: Sequence[str], workdir: Path, **env: str) -> None:
        self.api = api
        self.args = tuple(args)
        self.log_path = workdir / "bot.log"
        self.env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "BOT_DB_PATH": str(workdir / "bot.sqlite3"),
            "LOG_LEVEL": "INFO",
            "PTB_TIMEDELTA": "true",
            # Never Apple's servers from a benchmark: a walk's first step asks the status feed,
            # and an unreachable feed cost a fetch attempt per step (py-spy: 3% of samples).
            "APPLE_STATUS_URL": "off",
            **env,
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 60.0) -> float:
        """Start the process; return seconds from spawning it to its first getUpdates."""
        with self.log_path.open("ab") as log:
            self.started_at = time.perf_counter()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.args,
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        proc = self.proc
        await self.api.wait_for(
            lambda: self.api.polling or proc.returncode is not None,
            timeout,
            what=lambda: f"{' '.join(self.args)} to poll; log:\n{self.log()[-3000:]}",
        )
        ready = time.perf_counter() - self.started_at
        if proc.returncode is not None:
            raise RuntimeError(f"{' '.join(self.args)} exited {proc.returncode}:\n{self.log()}")
        return ready

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; kill it if it does not stop in time."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        return cpu_seconds_of(self.pid)

    def database_cpu_seconds(self) -> float:
        """SQLite runs inside the bot process: its CPU time is already in cpu_seconds()."""
        return 0.0

    def memory_mb(self) -> dict[str, float]:
        """Resident memory now (rss) and at its peak (hwm), in MB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = int(rest.split()[0]) / 1024
        return values

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def cpu_seconds_of(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of one process (with `children`: also of the children it has
    waited for); 0.0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it exited between listing and reading
        return 0.0
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / _TICKS


def new_api() -> FakeBotApi:
    """A fake Bot API sized for benchmarks (records enough for every reply to be seen)."""
    return FakeBotApi(token=TOKEN, max_records=200_000, callback_query_timeout=120.0)
