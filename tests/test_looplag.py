"""The event-loop lag probe: what it measures and the line it logs (BOT_LOOP_LAG_SECONDS)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from bot.config import Settings
from bot.errors import ConfigError
from bot.looplag import REPORT, percentile, probe, report


def test_the_report_line_reads_back() -> None:
    line = report([0.001, 0.002, 0.030, 0.0005], 1.0)
    found = REPORT.search(line)
    assert found is not None
    assert float(found["max"]) == 30.0 and int(found["ticks"]) == 4
    assert float(found["p50"]) == pytest.approx(1.5)
    assert percentile([], 99) == 0.0


async def test_a_blocked_loop_shows_as_lag(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.looplag"):
        task = asyncio.create_task(probe(0.2, tick=0.005))
        await asyncio.sleep(0.05)
        time.sleep(0.08)  # the loop stalls for 80 ms
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    lines = [m for r in caplog.records if (m := REPORT.search(r.getMessage()))]
    assert lines, caplog.text
    assert max(float(m["max"]) for m in lines) >= 70


def test_the_setting() -> None:
    assert Settings.from_env({}, need_token=False).loop_lag_seconds is None
    on = Settings.from_env({"BOT_LOOP_LAG_SECONDS": "60"}, need_token=False)
    assert on.loop_lag_seconds == 60
    for bad in ("0", "-1", "soon", "0.01"):
        with pytest.raises(ConfigError, match="BOT_LOOP_LAG_SECONDS"):
            Settings.from_env({"BOT_LOOP_LAG_SECONDS": bad}, need_token=False)
