"""Bot throughput and latency: the real `python -m bot run` beside bare PTB and aiogram echoes.

    python -m benchmarks.bench_bot [--users 500] [--repeats 3] [--smoke] [--out FILE]
    python -m benchmarks.bench_bot --cluster [--users 500] [--repeats 2]   # serve on PostgreSQL

Both are separate processes long-polling the same kind of local fake Bot API
(tests/fakebotapi.py, in this process). Per run, two phases:

1. paste: every user sends an error text (the labelled positives of tests/data/queries.yaml, in
   turn), all pushed at once;
2. tap: once every user has its reply, every user taps the first callback button of its newest
   message, all at once.

Measured per phase: updates per second (users / from the first push to the last reply), and
per update the time from being pushed (offered to getUpdates) to its reply (sendMessage or
editMessageText to that chat) reaching the fake; for taps also to the answerCallbackQuery. The bare
application gets the same number of concurrent updates and Bot API connections as ours
(CONCURRENT_UPDATES, CONNECTION_POOL_SIZE of bot.channels.telegram.processor), so that the ratio is
the cost of our code and transport against PTB as shipped (httpx); bare_aiohttp is the same bare
application on our transport (bot/channels/telegram/transport.py), so that ours / bare_aiohttp is
the cost of our code alone; once per run of the benchmark it also runs with PTB's defaults (256
concurrent updates, 256 connections), for comparison. Runs alternate ours, bare, ours, bare… so
that a busy machine slows both alike; the ratio is the median of the per-repeat ratios. CPU seconds
of the bot and of this process (the fake) show which side was the limit. aiogram is a bare
aiogram 3 echo (benchmarks/bare_aiogram.py: the same calls, aiogram's defaults), the fastest
bare framework we know: ours / aiogram is the goal (0.7 or more in both phases).

--cluster (benchmarks/cluster.py): `python -m bot serve` on a throwaway PostgreSQL, one process
against two behind the fake's webhook deliveries (round robin), the same two phases.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchmarks.bench_match import load_labelled
from benchmarks.common import (
    THROUGHPUT_COLUMNS,
    goal,
    goals_table,
    header,
    summary_ms,
    table,
    write_result,
)
from benchmarks.procs import AIOGRAM, BARE, OURS, Proc, new_api
from bot.channels.telegram.processor import CONCURRENT_UPDATES, CONNECTION_POOL_SIZE
from tests.support.fakebotapi import FakeBotApi

JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
FIRST_USER = 10_000_000
SAME_SETTINGS = {
    "BARE_CONCURRENT_UPDATES": str(CONCURRENT_UPDATES),
    "BARE_CONNECTION_POOL_SIZE": str(CONNECTION_POOL_SIZE),
}
# kind -> (command, environment); bare_defaults runs once per benchmark, the others each repeat.
KINDS: dict[str, tuple[Sequence[str], dict[str, str]]] = {
    "ours": (OURS, {}),
    "bare": (BARE, SAME_SETTINGS),
    "bare_aiohttp": (BARE, {**SAME_SETTINGS, "BARE_TRANSPORT": "aiohttp"}),
    "bare_defaults": (BARE, {}),
    "aiogram": (AIOGRAM, {}),
}
COMPARED = ("ours", "bare", "bare_aiohttp", "aiogram")


@dataclass
class Phase:
    """One burst: when each user's update was pushed and when its reply came."""

    name: str
    pushed: dict[int, float] = field(default_factory=dict)
    replied: dict[int, float] = field(default_factory=dict)
    answered: dict[int, float] = field(default_factory=dict)
    queries: dict[str, int] = field(default_factory=dict)  # callback_query_id -> user

    def observe(self, method: str, params: dict[str, Any], result: Any) -> None:
        now = time.perf_counter()
        if method in ("sendMessage", "editMessageText"):
            user = params.get("chat_id")
            if isinstance(user, int) and user in self.pushed and user not in self.replied:
                self.replied[user] = now
        elif method == "answerCallbackQuery":
            user_id = self.queries.get(str(params.get("callback_query_id")))
            if user_id is not None:
                self.answered.setdefault(user_id, now)

    def summary(self) -> dict[str, Any]:
        start = min(self.pushed.values())
        end = max(self.replied.values())
        result: dict[str, Any] = {
            "updates": len(self.pushed),
            "replied": len(self.replied),
            "seconds": round(end - start, 3),
            "updates_per_s": round(len(self.replied) / max(end - start, 1e-9), 1),
            "latency": summary_ms([self.replied[u] - self.pushed[u] for u in self.replied]),
        }
        if self.answered:
            result["answer_latency"] = summary_ms(
                [self.answered[u] - self.pushed[u] for u in self.answered]
            )
        return result


def _language(text: str) -> str:
    return "ja" if JAPANESE.search(text) else "en"


def _first_callback(api: FakeBotApi, user: int) -> tuple[int, str] | None:
    message = api.last_message(user)
    if message is None:
        return None
    for button in message.buttons:
        if "callback_data" in button:
            return message.message_id, button["callback_data"]
    return None


async def _burst(api: FakeBotApi, phase: Phase, timeout: float) -> dict[str, Any]:
    await api.wait_for(
        lambda: len(phase.replied) >= len(phase.pushed),
        timeout,
        what=lambda: f"{phase.name}: {len(phase.replied)}/{len(phase.pushed)} replies",
    )
    return phase.summary()


async def paste_burst(
    api: FakeBotApi, proc: Measured, ids: Sequence[int], texts: Sequence[str], timeout: float
) -> dict[str, Any]:
    """Push one text from every user at once; wait for every reply; return the phase's numbers."""
    paste = Phase("paste")
    api.observers.append(paste.observe)
    said = [(texts[n % len(texts)], _language(texts[n % len(texts)])) for n in range(len(ids))]
    before = _cpu(proc)
    for user, (text, lang) in zip(ids, said, strict=True):
        paste.pushed[user] = time.perf_counter()
        api.push_text(user, text, language_code=lang)
    result = await _burst(api, paste, timeout)
    result |= _cpu_spent(proc, before)
    api.observers.remove(paste.observe)
    await api.wait_idle(quiet=0.2, timeout=timeout)
    return result


class Measured(Protocol):
    """What a phase reads of the bot: one process, or several together (benchmarks/cluster.py)."""

    def cpu_seconds(self) -> float: ...

    def database_cpu_seconds(self) -> float: ...

    def memory_mb(self) -> dict[str, float]: ...


def _cpu(proc: Measured) -> tuple[float, float, float]:
    """CPU seconds so far: the bot, this process (the fake Bot API and the driver), the database."""
    return proc.cpu_seconds(), time.process_time(), proc.database_cpu_seconds()


def _cpu_spent(proc: Measured, before: tuple[float, float, float]) -> dict[str, float]:
    bot, fake, database = (
        round(now - then, 2) for now, then in zip(_cpu(proc), before, strict=True)
    )
    return {"bot_cpu_s": bot, "fake_cpu_s": fake, "db_cpu_s": database}


async def both_phases(
    api: FakeBotApi, proc: Measured, users: int, texts: Sequence[str], timeout: float
) -> dict[str, Any]:
    """Paste from every user at once, then tap from every user at once; return the numbers."""
    result: dict[str, Any] = {}
    ids = list(range(FIRST_USER, FIRST_USER + users))
    result["paste"] = await paste_burst(api, proc, ids, texts, timeout)

    tap = Phase("tap")
    api.observers.append(tap.observe)
    targets = {user: _first_callback(api, user) for user in ids}
    result["tap_without_button"] = sum(t is None for t in targets.values())
    before = _cpu(proc)
    for user, target in targets.items():
        if target is None:
            continue
        tap.pushed[user] = time.perf_counter()
        update = api.push_tap(user, *target)
        tap.queries[update["callback_query"]["id"]] = user
    result["tap"] = await _burst(api, tap, timeout) | _cpu_spent(proc, before)
    api.observers.remove(tap.observe)
    await api.wait_idle(quiet=0.2, timeout=timeout)

    result["memory"] = proc.memory_mb()
    result["errors"] = [f"{e.method}: {e.status} {e.description}" for e in api.errors[:5]]
    result["unanswered_callback_queries"] = len(api.unanswered_callback_queries)
    return result


async def run_once(kind: str, users: int, texts: Sequence[str], timeout: float) -> dict[str, Any]:
    """Start one bot process, drive both phases, stop it; return the measurements."""
    with tempfile.TemporaryDirectory(prefix=f"bench_bot_{kind}_") as tmp:
        async with new_api() as api:
            command, env = KINDS[kind]
            proc = Proc(api, command, Path(tmp), **env)
            try:
                startup = await proc.start()
                await api.wait_idle(quiet=0.2)
                result: dict[str, Any] = {"kind": kind, "startup_s": round(startup, 3)}
                result |= await both_phases(api, proc, users, texts, timeout)
            finally:
                code = await proc.stop()
            result["exit_code"] = code
            if code != 0:
                result["log_tail"] = proc.log()[-2000:]
            return result


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per kind and phase, and ours/bare ratios paired repeat by repeat."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = [r for r in runs if r["kind"] == kind]
        if not mine:
            continue
        out[kind] = {
            phase: {
                "updates_per_s": statistics.median(r[phase]["updates_per_s"] for r in mine),
                "p50_ms": statistics.median(r[phase]["latency"]["p50_ms"] for r in mine),
                "p99_ms": statistics.median(r[phase]["latency"]["p99_ms"] for r in mine),
                "bot_cpu_s": statistics.median(r[phase]["bot_cpu_s"] for r in mine),
                "fake_cpu_s": statistics.median(r[phase]["fake_cpu_s"] for r in mine),
                "seconds": statistics.median(r[phase]["seconds"] for r in mine),
            }
            for phase in ("paste", "tap")
        }
    ours = [r for r in runs if r["kind"] == "ours"]
    for key, kind in (
        ("ratio", "bare"),
        ("ratio_same_transport", "bare_aiohttp"),
        ("ratio_aiogram", "aiogram"),
    ):
        bare = [r for r in runs if r["kind"] == kind]
        out[key] = {
            phase: round(
                statistics.median(
                    o[phase]["updates_per_s"] / b[phase]["updates_per_s"]
                    for o, b in zip(ours, bare, strict=True)
                ),
                2,
            )
            for phase in ("paste", "tap")
        }
    return out


async def run(users: int, repeats: int, timeout: float) -> dict[str, Any]:
    texts = [item.text for item in load_labelled() if item.accepted]
    runs = []
    for repeat in range(repeats):
        for kind in (*COMPARED, "bare_defaults") if repeat == 0 else COMPARED:
            result = await run_once(kind, users, texts, timeout)
            result["repeat"] = repeat
            runs.append(result)
    return {
        "users": users,
        "repeats": repeats,
        "settings": {
            "concurrent_updates": CONCURRENT_UPDATES,
            "connection_pool_size": CONNECTION_POOL_SIZE,
        },
        "runs": runs,
        "summary": aggregate(runs),
    }


def goals_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    summary = result["summary"]
    goals = []
    for phase in ("paste", "tap"):
        goals.append(goal(f"{phase}: ours / bare PTB", summary["ratio"][phase], 0.7, at_least=True))
        goals.append(
            goal(
                f"{phase}: ours / bare aiogram",
                summary["ratio_aiogram"][phase],
                0.7,
                at_least=True,
            )
        )
        goals.append(
            goal(
                f"{phase}: ours, updates/s",
                summary["ours"][phase]["updates_per_s"],
                300.0,
                at_least=True,
            )
        )
    return goals


def report(result: dict[str, Any]) -> str:
    summary = result["summary"]
    rows = []
    for phase in ("paste", "tap"):
        for kind in KINDS:
            if kind not in summary:
                continue
            s = summary[kind][phase]
            rows.append(
                [
                    phase,
                    kind,
                    f"{s['updates_per_s']:.0f}",
                    s["p50_ms"],
                    s["p99_ms"],
                    s["bot_cpu_s"],
                    s["fake_cpu_s"],
                    s["seconds"],
                    f"{summary['ratio'][phase]:.2f}" if kind == "ours" else "",
                    f"{summary['ratio_aiogram'][phase]:.2f}" if kind == "ours" else "",
                ]
            )
    return "\n".join(
        [
            header("Bot throughput"),
            f"{result['users']} users at once, {result['repeats']} repeats (medians; "
            "bare_defaults: one run); latency from the update being pushed to its reply reaching "
            "the fake Bot API. ours and bare: "
            f"{result['settings']['concurrent_updates']} concurrent updates, "
            f"{result['settings']['connection_pool_size']} connections; bare_aiohttp: bare with "
            "our Bot API transport (bot/channels/telegram/transport.py) instead of PTB's httpx "
            "(ours / "
            f"bare_aiohttp: paste {summary['ratio_same_transport']['paste']:.2f}, tap "
            f"{summary['ratio_same_transport']['tap']:.2f}); bare_defaults: PTB's "
            "defaults (256, 256).\n",
            table(
                [
                    *THROUGHPUT_COLUMNS,
                    "wall s",
                    "ours/bare",
                    "ours/aiogram",
                ],
                rows,
            ),
            "\n" + goals_table(result["goals"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per phase at most")
    parser.add_argument("--smoke", action="store_true", help="20 users, one repeat")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="instead: one `serve` on PostgreSQL against two (benchmarks/cluster.py)",
    )
    args = parser.parse_args(argv)
    if args.cluster:
        from benchmarks.cluster import main as cluster_main

        users, repeats = (20, 1) if args.smoke else (args.users, args.repeats)
        return cluster_main(users, repeats, args.timeout, args.out, smoke=args.smoke)
    users, repeats = (20, 1) if args.smoke else (args.users, args.repeats)
    result = asyncio.run(run(users, repeats, args.timeout))
    result["smoke"] = args.smoke
    result["goals"] = goals_of(result)
    print(report(result))
    path = write_result("bench_bot", result, args.out)
    print(f"\nwritten: {path}")
    failed = [r for r in result["runs"] if r["exit_code"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
