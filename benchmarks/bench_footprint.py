"""Footprint: start-up time, memory with many stored users, SQLite size, and how they grow.

    python -m benchmarks.bench_footprint [--users 100000] [--runs 5] [--smoke] [--out FILE]

* Start-up: from spawning `python -m bot run` to its first getUpdates on the fake Bot API
  (imports, knowledge load and validation, matcher index, SQLite open and migrations, the
  Bot API calls before polling); the median of several runs, with a breakdown of the parts
  measured in a fresh interpreter.
* Memory: a SQLite file is filled with N users (default 100,000), each with a stored
  conversation (a walk in progress, a pending question or a finished one; language, device)
  and about five history lines, written in bulk with the rows the Store itself writes
  (UserState.to_json, the history columns). The real bot is started on it and serves a burst
  of stored users (their states are loaded and saved); its resident memory (VmRSS, and the
  peak VmHWM) is read from /proc. The same with an empty database, for comparison.
* SQLite size per user: the file (WAL checkpointed) divided by the users.
* Growth: the same measurements for several user counts and knowledge-base sizes
  (generated entries, benchmarks/synthetic.py, written to a temporary knowledge folder).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_bot import paste_burst
from benchmarks.bench_match import load_labelled
from benchmarks.common import ROOT, goal, goals_table, header, table, write_result
from benchmarks.procs import OURS, Proc, new_api
from benchmarks.synthetic import write_knowledge_dir
from bot.app import load_content
from bot.content.knowledge import Device, Knowledge
from bot.conversation.state import Outcome, UserState, Walk
from bot.storage.sqlite import SqliteStore

FIRST_USER = 20_000_000
SERVED = 500  # stored users who write at once during a memory measurement (--smoke: 50)
HISTORY_PER_USER = 5

# Timed in a fresh interpreter: what `python -m bot run` does before it talks to Telegram.
_BREAKDOWN = """
import json, sys, time
t0 = time.perf_counter()
import telegram.ext, bot.channels.telegram.adapter, bot.storage.sqlite, bot.app
t1 = time.perf_counter()
from pathlib import Path
from bot.app import load_content, engine_for
content = load_content(Path("knowledge"), Path("locales"))
t2 = time.perf_counter()
engine_for(content)
t3 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "load_content_s": t2 - t1, "index_build_s": t3 - t2}))
"""


# --------------------------------------------------------------------------- the database


def _conversations(knowledge: Knowledge, rng: random.Random, user_id: int, now: float) -> tuple:
    """One stored user: their users row and their history rows, as the Store writes them."""
    entries = list(knowledge.entries.values())
    entry = rng.choice(entries)
    device = rng.choice(list(Device))
    path = knowledge.path_for(entry.id, device) or entry.path[:1]
    started = now - rng.uniform(0, 30 * 86400)
    kind = rng.random()
    walk = pending = None
    if kind < 0.6:  # a walk in progress or finished
        walk = Walk(
            entry=entry.id,
            device=device,
            path=path,
            position=rng.randrange(len(path) + 1),
            message_id=rng.randrange(1, 10_000),
            started_at=started,
        )
    elif kind < 0.8:  # recognised, waiting for the device
        pending = entry.id
    state = UserState(
        user_id,
        lang=rng.choice([None, "ja", "en"]),
        device=device if kind < 0.9 else None,
        walk=walk,
        pending_entry=pending,
    )
    user_row = (user_id, state.lang, state.device and state.device.value, state.to_json(), started)
    history = []
    outcomes = [Outcome.STARTED] + [Outcome.NEXT] * (HISTORY_PER_USER - 2)
    outcomes.append(rng.choice([Outcome.SOLVED, Outcome.EXHAUSTED, Outcome.ABANDONED]))
    for step, outcome in enumerate(outcomes):
        fix = path[min(step, len(path) - 1)] if path else None
        history.append((user_id, entry.id, device.value, fix, outcome.value, started + 60 * step))
    return user_row, history


async def make_db(path: Path, users: int, knowledge: Knowledge, seed: int = 7) -> dict[str, Any]:
    """Create the schema with the Store, then write `users` users and their history in bulk."""
    store = await SqliteStore.open(path)
    await store.close()
    rng = random.Random(seed)
    now = time.time()
    start = time.perf_counter()
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        chunk = 10_000
        for first in range(0, users, chunk):
            rows = [
                _conversations(knowledge, rng, FIRST_USER + n, now)
                for n in range(first, min(first + chunk, users))
            ]
            with db:
                db.executemany(
                    "INSERT INTO users (user_id, lang, device, state, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [user for user, _ in rows],
                )
                db.executemany(
                    "INSERT INTO history (user_id, entry, device, fix, outcome, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [line for _, history in rows for line in history],
                )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return {"users": users, "write_s": round(time.perf_counter() - start, 2), **db_size(path)}


def db_size(path: Path) -> dict[str, Any]:
    """The database's size on disk (main file + WAL), in MB."""
    total = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return {"db_mb": round(total / 2**20, 2)}


# --------------------------------------------------------------------------- the measurements


async def serve(
    db: Path, knowledge_dir: Path, served: int, stored_users: int, timeout: float
) -> dict[str, Any]:
    """Start the real bot on `db`, let `served` stored users paste an error, read its memory."""
    texts = [item.text for item in load_labelled() if item.accepted]
    with tempfile.TemporaryDirectory(prefix="bench_footprint_") as tmp:
        async with new_api() as api:
            proc = Proc(
                api, OURS, Path(tmp), BOT_DB_PATH=str(db), BOT_KNOWLEDGE_DIR=str(knowledge_dir)
            )
            try:
                startup = await proc.start(timeout=timeout)
                await api.wait_idle(quiet=0.2)
                idle = proc.memory_mb()
                # Stored users when there are some (their states are read), else new ones.
                if stored_users:
                    picks = random.Random(served).sample(range(stored_users), served)
                    ids = [FIRST_USER + n for n in picks]
                else:
                    ids = list(range(FIRST_USER, FIRST_USER + served))
                burst = await paste_burst(api, proc, ids, texts, timeout)
                busy = proc.memory_mb()
            finally:
                code = await proc.stop()
    return {
        "startup_s": round(startup, 3),
        "rss_idle_mb": round(idle["rss_mb"], 1),
        "rss_mb": round(busy["rss_mb"], 1),
        "peak_rss_mb": round(busy["peak_rss_mb"], 1),
        "served": len(ids),
        "updates_per_s": burst["updates_per_s"],
        "p50_ms": burst["latency"]["p50_ms"],
        "p99_ms": burst["latency"]["p99_ms"],
        "exit_code": code,
        **db_size(db),
    }


async def startup_runs(runs: int, timeout: float) -> dict[str, Any]:
    """Time several start-ups on an empty database; and the parts, in a fresh interpreter."""
    seconds = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
            async with new_api() as api:
                proc = Proc(api, OURS, Path(tmp))
                try:
                    seconds.append(await proc.start(timeout=timeout))
                finally:
                    await proc.stop()
    parts = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _BREAKDOWN],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        parts.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "runs": [round(s, 3) for s in seconds],
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "breakdown_median_s": {
            key: round(statistics.median(p[key] for p in parts), 3) for key in parts[0]
        },
    }


async def run(
    users: int,
    runs: int,
    user_steps: Sequence[int],
    kb_sizes: Sequence[int | None],
    timeout: float,
    served: int = SERVED,
) -> dict[str, Any]:
    content = load_content(ROOT / "knowledge", ROOT / "locales")
    knowledge = content.knowledge
    result: dict[str, Any] = {"served": served, "startup": await startup_runs(runs, timeout)}
    growth_users = []
    with tempfile.TemporaryDirectory(prefix="bench_footprint_db_") as tmp:
        for count in sorted({0, *user_steps, users}):
            db = Path(tmp) / f"users_{count}.sqlite3"
            made = await make_db(db, count, knowledge)
            writers = min(served, count or served)
            measured = await serve(db, ROOT / "knowledge", writers, count, timeout)
            growth_users.append(
                {
                    "users": count,
                    "write_s": made["write_s"],
                    "db_mb_before": made["db_mb"],
                    "bytes_per_user": round(made["db_mb"] * 2**20 / count) if count else None,
                    **measured,
                }
            )
    result["growth_users"] = growth_users
    growth_kb = []
    with tempfile.TemporaryDirectory(prefix="bench_footprint_kb_") as tmp:
        for size in kb_sizes:  # None: the real knowledge base
            if size is None:
                folder, entries = ROOT / "knowledge", len(knowledge.entries)
            else:
                folder = Path(tmp) / f"kb_{size}"
                write_knowledge_dir(ROOT / "knowledge", folder, knowledge, size)
                entries = size
            db = Path(tmp) / f"kb_{entries}.sqlite3"
            measured = await serve(db, folder, served, 0, timeout)
            growth_kb.append({"entries": entries, **measured})
    result["growth_kb"] = growth_kb
    return result


def goals_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    biggest = max(result["growth_users"], key=lambda r: r["users"])
    return [
        goal("start-up to first getUpdates, median (s)", result["startup"]["median_s"], 1.0),
        goal(
            f"RSS with {biggest['users']:,} stored users, serving (MB)",
            biggest["peak_rss_mb"],
            150.0,
        ),
    ]


def report(result: dict[str, Any]) -> str:
    startup = result["startup"]
    parts = startup["breakdown_median_s"]
    users = result["growth_users"]
    kb = result["growth_kb"]
    return "\n".join(
        [
            header("Footprint"),
            f"Start-up (spawn to first getUpdates, empty database), {len(startup['runs'])} "
            f"runs: median {startup['median_s']} s (min {startup['min_s']}, max "
            f"{startup['max_s']}). Parts, in a fresh interpreter: imports "
            f"{parts['imports_s']} s, knowledge + locales load {parts['load_content_s']} s, "
            f"matcher index {parts['index_build_s']} s.\n",
            "With stored users (each a conversation and ~5 history lines); the bot serves "
            f"{result['served']} of them at once (a pasted error each; new users when none "
            "are stored):\n",
            table(
                [
                    "stored users",
                    "SQLite MB",
                    "bytes/user",
                    "start-up s",
                    "RSS idle MB",
                    "RSS serving MB",
                    "peak RSS MB",
                    "p50 ms",
                    "p99 ms",
                ],
                [
                    [
                        f"{r['users']:,}",
                        r["db_mb_before"],
                        r["bytes_per_user"] or "-",
                        r["startup_s"],
                        r["rss_idle_mb"],
                        r["rss_mb"],
                        r["peak_rss_mb"],
                        r["p50_ms"],
                        r["p99_ms"],
                    ]
                    for r in users
                ],
            ),
            "\nWith knowledge bases of generated entries (empty database, same burst):\n",
            table(
                [
                    "entries",
                    "start-up s",
                    "RSS idle MB",
                    "peak RSS MB",
                    "p50 ms",
                    "p99 ms",
                    "updates/s",
                ],
                [
                    [
                        f"{r['entries']:,}",
                        r["startup_s"],
                        r["rss_idle_mb"],
                        r["peak_rss_mb"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["updates_per_s"],
                    ]
                    for r in kb
                ],
            ),
            "\n" + goals_table(result["goals"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="start-ups to time")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    # (users, start-ups, smaller user counts, knowledge-base sizes: None = the real one)
    plan: tuple[int, int, list[int], list[int | None]] = (
        (200, 1, [], [300])
        if args.smoke
        else (args.users, args.runs, [10_000], [None, 1_000, 10_000])
    )
    users, runs, user_steps, kb_sizes = plan
    served = 50 if args.smoke else SERVED
    result = asyncio.run(run(users, runs, user_steps, kb_sizes, args.timeout, served))
    result["smoke"] = args.smoke
    result["goals"] = goals_of(result)
    print(report(result))
    path = write_result("bench_footprint", result, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
