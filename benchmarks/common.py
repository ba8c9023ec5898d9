"""What every benchmark shares: the machine description, percentiles, tables and JSON results."""

from __future__ import annotations

import datetime as dtm
import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Describe where the numbers were taken: date, CPUs, CPU model, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {
        "date": dtm.datetime.now(dtm.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Summarise durations in seconds as p50/p99/mean/max milliseconds."""
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3) if seconds else 0.0,
        "max_ms": round(max(seconds, default=0.0) * 1000, 3),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render a Markdown table (so it can be pasted into the README as it is)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def goal(name: str, value: float, limit: float, *, at_least: bool = False) -> dict[str, Any]:
    """Record one goal: its measured value, its limit and whether it was met."""
    met = value >= limit if at_least else value < limit
    return {"goal": name, "value": round(value, 3), "limit": limit, "met": bool(met)}


def goals_table(goals: Sequence[dict[str, Any]]) -> str:
    """Render the goals as a table."""
    return table(
        ["goal", "measured", "limit", "met"],
        [[g["goal"], g["value"], g["limit"], "yes" if g["met"] else "NO"] for g in goals],
    )


def write_result(name: str, result: dict[str, Any], path: Path | None = None) -> Path:
    """Write a benchmark's results as JSON (benchmarks/results/<name>.json by default)."""
    target = path or RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "argv": sys.argv[1:], **result}
    target.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return target


def header(title: str) -> str:
    """Return a heading line naming the machine, for the printed report."""
    m = machine()
    return f"## {title}\n\n{m['date']}; {m['nproc']} CPUs ({m['cpu']}); Python {m['python']}\n"


# The first columns of a throughput table (bench_bot, and its --cluster run in cluster.py).
THROUGHPUT_COLUMNS = ["phase", "bot", "updates/s", "p50 ms", "p99 ms", "bot CPU s", "fake CPU s"]
