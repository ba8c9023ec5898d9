"""How late the event loop runs: a probe that logs the lag's percentiles (BOT_LOOP_LAG_SECONDS).

Every TICK seconds the probe asks the loop to wake it up; how much later than asked it wakes
is the lag: how long something (matching, a thread holding the GIL, parsing a large update)
kept every other update waiting. Each period it logs one line, e.g.

    event loop lag: p50 0.4 ms, p99 12.8 ms, max 15.1 ms (97 ticks of 10 ms in 1.0 s)

Off unless BOT_LOOP_LAG_SECONDS is set (the period): an operator turns it on to see whether the
bot keeps up, and benchmarks/bench_loop.py reads it from the real process. It costs one wake-up
per tick (100 a second) and a sort per period.
"""

from __future__ import annotations

import asyncio
import logging
import re

logger = logging.getLogger(__name__)

TICK = 0.01  # seconds between the probe's wake-ups
REPORT = re.compile(
    r"event loop lag: p50 (?P<p50>[\d.]+) ms, p99 (?P<p99>[\d.]+) ms, max (?P<max>[\d.]+) ms"
    r" \((?P<ticks>\d+) ticks"
)


def percentile(ordered: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) of sorted values, by linear interpolation."""
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def report(lags: list[float], period: float) -> str:
    """Return the log line for one period's lags (seconds), in the format REPORT reads."""
    ordered = sorted(lags)
    return (
        f"event loop lag: p50 {percentile(ordered, 50) * 1000:.1f} ms, "
        f"p99 {percentile(ordered, 99) * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms "
        f"({len(ordered)} ticks of {TICK * 1000:.0f} ms in {period:.1f} s)"
    )


async def probe(period: float, tick: float = TICK) -> None:
    """Measure the loop's lag every `tick` seconds and log its percentiles every `period`."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    started = loop.time()
    while True:
        asked = loop.time()
        await asyncio.sleep(tick)
        woke = loop.time()
        lags.append(max(0.0, woke - asked - tick))
        if woke - started >= period:
            logger.info("%s", report(lags, woke - started))
            lags, started = [], woke
