"""Footprint: start-up time, memory with many stored users, SQLite size, and how they grow.

    python -m benchmarks.bench_footprint [--users 100000] [--runs 5] [--no-growth] [--smoke]
                                         [--out FILE]

* Start-up: from spawning `python -m bot run` to its first getUpdates on the fake Bot API
  (imports, knowledge load and validation, matcher index, SQLite open and migrations, the
  Bot API calls before polling); the median of several runs, with each step's time and
  memory measured in a fresh interpreter.
* Memory: a SQLite file is filled with N users (default 100,000), each with a stored
  conversation (a walk in progress, a pending question or a finished one; language, device)
  and about five history lines, written in bulk with the rows the Store itself writes
  (UserState.to_json, the history columns). The real bot is started on it and serves a burst
  of stored users (their states are loaded and saved: the burst is also the warm-up, every
  paste being matched with the encoder and the Japanese dictionary). Its memory is read from
  /proc once every paste is answered (benchmarks/memory.py): RSS, the peak RSS, PSS, USS,
  anonymous and file-backed, and RSS/PSS/USS per kind of mapping (anonymous memory, the
  Sudachi dictionary, the encoder's table, libraries). The same with an empty database.
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

from benchmarks import memory
from benchmarks.bench_bot import paste_burst
from benchmarks.bench_match import load_labelled
from benchmarks.common import ROOT, goal, goals_table, header, table, write_result
from benchmarks.procs import OURS, Proc, new_api
from benchmarks.synthetic import write_knowledge_dir
from bot.content.knowledge import Device, Knowledge, load_knowledge
from bot.conversation.state import Outcome, UserState, Walk
from bot.storage.sqlite import SqliteStore

FIRST_USER = 20_000_000
SERVED = 500  # stored users who write at once during a memory measurement (--smoke: 50)
HISTORY_PER_USER = 5

# What `python -m bot run` does before it talks to Telegram, step by step in a fresh
# interpreter: each step's seconds and what it adds to the resident memory (anonymous and
# file-backed; benchmarks/memory.py).
_BREAKDOWN = """
import json, time
from pathlib import Path
from benchmarks.memory import rollup
steps, last = [], (time.perf_counter(), rollup())
def step(name):
    global last
    now, mem = time.perf_counter(), rollup()
    steps.append({"step": name, "s": now - last[0], "total_rss_mb": mem["rss_mb"],
                  **{k: mem[k] - last[1][k] for k in ("rss_mb", "anon_mb", "file_mb")}})
    last = (time.perf_counter(), rollup())
step("interpreter")
import numpy
step("numpy")
import telegram.ext, aiohttp.web
step("python-telegram-bot, aiohttp")
import bot.app, bot.channels.telegram.application, bot.storage.sqlite
step("the bot's modules")
import bot.ocr
step("Pillow (screenshots; when Tesseract is installed)")
from bot.matching.japanese import default_reader
default_reader()
step("Sudachi dictionary opened")
from bot.app import load_content, engine_for
content = load_content(Path("knowledge"), Path("locales"))
step("knowledge + locales (patterns read)")
from bot.matching.semantic import default_encoder
default_encoder()
step("sentence encoder loaded")
engine_for(content)
step("matcher index (pattern vectors)")
print(json.dumps(steps))
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
    """Start the real bot on `db`, let `served` stored users paste an error, read its memory.

    Idle: right after start-up. Serving: once every paste is answered (the encoder, the
    dictionary and the database have all been used), with the breakdown by mapping.
    """
    texts = [item.text for item in load_labelled() if item.accepted]
    with tempfile.TemporaryDirectory(prefix="bench_footprint_") as tmp:
        async with new_api() as api:
            proc = Proc(
                api, OURS, Path(tmp), BOT_DB_PATH=str(db), BOT_KNOWLEDGE_DIR=str(knowledge_dir)
            )
            try:
                startup = await proc.start(timeout=timeout)
                await api.wait_idle(quiet=0.2)
                idle = memory.rollup(proc.pid)
                # Stored users when there are some (their states are read), else new ones.
                if stored_users:
                    picks = random.Random(served).sample(range(stored_users), served)
                    ids = [FIRST_USER + n for n in picks]
                else:
                    ids = list(range(FIRST_USER, FIRST_USER + served))
                burst = await paste_burst(api, proc, ids, texts, timeout)
                busy = memory.rollup(proc.pid)
                mappings = memory.breakdown(proc.pid)
            finally:
                code = await proc.stop()
    return {
        "startup_s": round(startup, 3),
        "rss_idle_mb": idle["rss_mb"],
        "rss_mb": busy["rss_mb"],
        "peak_rss_mb": busy["peak_rss_mb"],
        "pss_mb": busy["pss_mb"],
        "uss_mb": busy["uss_mb"],
        "anon_mb": busy["anon_mb"],
        "file_mb": busy["file_mb"],
        "mappings": mappings,
        "served": len(ids),
        "updates_per_s": burst["updates_per_s"],
        "p50_ms": burst["latency"]["p50_ms"],
        "p99_ms": burst["latency"]["p99_ms"],
        "exit_code": code,
        **db_size(db),
    }


async def startup_runs(runs: int, timeout: float) -> dict[str, Any]:
    """Time several start-ups on an empty database; and the steps, in a fresh interpreter."""
    seconds = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
            async with new_api() as api:
                proc = Proc(api, OURS, Path(tmp))
                try:
                    seconds.append(await proc.start(timeout=timeout))
                finally:
                    await proc.stop()
    runs_steps = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _BREAKDOWN],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs_steps.append(json.loads(out.strip().splitlines()[-1]))
    steps = [
        {
            "step": first["step"],
            **{
                key: round(statistics.median(r[i][key] for r in runs_steps), 3)
                for key in ("s", "rss_mb", "anon_mb", "file_mb", "total_rss_mb")
            },
        }
        for i, first in enumerate(runs_steps[0])
    ]
    return {
        "runs": [round(s, 3) for s in seconds],
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "steps": steps,
    }


async def run(
    users: int,
    runs: int,
    user_steps: Sequence[int],
    kb_sizes: Sequence[int | None],
    timeout: float,
    served: int = SERVED,
) -> dict[str, Any]:
    # The knowledge only: this process opening the Sudachi dictionary too would share its
    # pages with the bot's, and halve what the bot's PSS counts of them.
    knowledge = load_knowledge(ROOT / "knowledge")
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


# Issue 11: start-up within 2 s; at most 250 MB resident with 100,000 stored users.
STARTUP_GOAL_S = 2.0
RSS_GOAL_MB = 250.0


def goals_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    biggest = max(result["growth_users"], key=lambda r: r["users"])
    return [
        goal(
            "start-up to first getUpdates, median (s)",
            result["startup"]["median_s"],
            STARTUP_GOAL_S,
        ),
        goal(
            f"RSS with {biggest['users']:,} stored users, after serving (MB)",
            biggest["rss_mb"],
            RSS_GOAL_MB,
        ),
    ]


def _steps_table(steps: Sequence[dict[str, Any]]) -> str:
    return table(
        ["step", "s", "+RSS MB", "+anonymous MB", "+file-backed MB", "RSS after MB"],
        [
            [s["step"], s["s"], s["rss_mb"], s["anon_mb"], s["file_mb"], s["total_rss_mb"]]
            for s in steps
        ],
    )


def _mappings_table(row: dict[str, Any]) -> str:
    groups = row["mappings"]
    return table(
        ["mappings", "RSS MB", "PSS MB", "USS MB"],
        [[name, g["rss_mb"], g["pss_mb"], g["uss_mb"]] for name, g in groups.items()]
        + [["**process**", row["rss_mb"], row["pss_mb"], row["uss_mb"]]],
    )


def report(result: dict[str, Any]) -> str:
    startup = result["startup"]
    users = result["growth_users"]
    biggest = max(users, key=lambda r: r["users"])
    kb = result["growth_kb"]
    lines = [
        header("Footprint"),
        f"Start-up (spawn to first getUpdates, empty database), {len(startup['runs'])} "
        f"runs: median {startup['median_s']} s (min {startup['min_s']}, max "
        f"{startup['max_s']}). Steps in a fresh interpreter (medians):\n",
        _steps_table(startup["steps"]),
        "\nWith stored users (each a conversation and ~5 history lines); the bot serves "
        f"{result['served']} of them at once (a pasted error each; new users when none "
        "are stored); memory once every paste is answered:\n",
        table(
            [
                "stored users",
                "SQLite MB",
                "bytes/user",
                "start-up s",
                "RSS idle MB",
                "RSS serving MB",
                "peak RSS MB",
                "PSS MB",
                "USS MB",
                "anonymous MB",
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
                    r["pss_mb"],
                    r["uss_mb"],
                    r["anon_mb"],
                    r["p50_ms"],
                    r["p99_ms"],
                ]
                for r in users
            ],
        ),
        f"\nWhere the memory is, {biggest['users']:,} stored users, after serving:\n",
        _mappings_table(biggest),
    ]
    if kb:
        lines += [
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
        ]
    return "\n".join([*lines, "\n" + goals_table(result["goals"])])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="start-ups to time")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument(
        "--no-growth",
        action="store_true",
        help="only the empty database and --users (no 10,000-user step, no generated knowledge)",
    )
    args = parser.parse_args(argv)
    # (users, start-ups, smaller user counts, knowledge-base sizes: None = the real one)
    plan: tuple[int, int, list[int], list[int | None]] = (
        (200, 1, [], [300])
        if args.smoke
        else (args.users, args.runs, [10_000], [None, 1_000, 10_000])
    )
    users, runs, user_steps, kb_sizes = plan
    if args.no_growth:
        user_steps, kb_sizes = [], []
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
