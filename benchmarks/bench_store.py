"""Store throughput: N saves of a state and a history line from concurrent tasks, per backend.

    python -m benchmarks.bench_store [--saves 1000] [--tasks 20] [--database-url postgresql://…]

Without --database-url (or BOT_DATABASE_URL) a throwaway PostgreSQL server is started as the
tests do (tests/support/postgres.py), with fsync off: compare it with SQLite's synchronous=NORMAL
knowing that. `postgres+lock` wraps each save in the user's advisory lock, as a service layer
serialising a user's updates across instances would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.common import goals_table, header, summary_ms, table, write_result
from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.storage.base import Store
from bot.storage.memory import MemoryStore
from bot.storage.postgres import PostgresStore
from bot.storage.sqlite import SqliteStore
from tests.support import postgres as pg


async def hammer(store: Store, saves: int, tasks: int, *, lock: bool) -> dict[str, Any]:
    """Run `saves` saves spread over `tasks` concurrent tasks; return rate and latencies."""
    latencies: list[float] = []

    async def worker(index: int) -> None:
        for n in range(index, saves, tasks):
            user = 1000 + n % (tasks * 5)  # several saves per user, users spread over tasks
            state = UserState(user, lang="en", device=Device.IPHONE, extra={"n": n})
            line = OutcomeRecord(user, "sync-stuck", Device.IPHONE, "restart", Outcome.NEXT, n)
            held: AbstractAsyncContextManager[None] = nullcontext()
            if lock and isinstance(store, PostgresStore):
                held = store.user_lock(user)
            start = time.perf_counter()
            async with held:
                await store.save(state, [line])
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(tasks)))
    elapsed = time.perf_counter() - start
    assert len(await store.outcomes_since(0.0)) == saves
    return {"saves": saves, "seconds": round(elapsed, 3), "per_second": saves / elapsed} | {
        "latency": summary_ms(latencies)
    }


@asynccontextmanager
async def postgres_url(given: str | None) -> AsyncIterator[str]:
    """Yield the given URL, or one of a throwaway server's fresh schemas."""
    if given:
        yield given
        return
    bin_dir = pg.find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: pass --database-url")
    server = pg.start_server(bin_dir)
    try:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        server.sql(f"CREATE SCHEMA {schema}")
        yield f"{server.url()}?search_path={schema}"
    finally:
        pg.stop_server(bin_dir, server)


async def run(saves: int, tasks: int, url: str | None) -> list[dict[str, Any]]:
    rows = []
    async with MemoryStore() as memory:
        rows.append({"backend": "memory"} | await hammer(memory, saves, tasks, lock=False))
    with tempfile.TemporaryDirectory() as tmp:
        async with await SqliteStore.open(Path(tmp) / "bench.sqlite3") as sqlite:
            rows.append({"backend": "sqlite"} | await hammer(sqlite, saves, tasks, lock=False))
    async with postgres_url(url) as target:
        for lock in (False, True):
            async with await PostgresStore.open(target) as store:
                conn = await asyncpg.connect(target)  # each run starts from empty tables
                try:
                    await conn.execute("TRUNCATE users CASCADE")
                finally:
                    await conn.close()
                result = await hammer(store, saves, tasks, lock=lock)
            rows.append({"backend": "postgres+lock" if lock else "postgres"} | result)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--saves", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("BOT_DATABASE_URL"))
    parser.add_argument("--smoke", action="store_true", help="100 saves, to check it runs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    saves = 100 if args.smoke else args.saves
    rows = asyncio.run(run(saves, args.tasks, args.database_url))
    print(header(f"Store: {saves} saves (state + 1 history line) from {args.tasks} tasks"))
    print(
        table(
            ["backend", "saves/s", "p50 ms", "p99 ms", "seconds"],
            [
                [
                    r["backend"],
                    r["per_second"],
                    r["latency"]["p50_ms"],
                    r["latency"]["p99_ms"],
                    r["seconds"],
                ]
                for r in rows
            ],
        )
    )
    print()
    print(goals_table([]))
    write_result("bench_store", {"smoke": args.smoke, "rows": rows, "goals": []}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
