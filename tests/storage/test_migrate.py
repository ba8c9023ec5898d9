"""`python -m bot migrate-db`: a SQLite database copied into PostgreSQL, end to end."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg

from bot.apple_status.report import Subscription
from bot.content.knowledge import Device
from bot.conversation.state import Outcome, UserState
from bot.insights.unmatched import NONE_OF_THESE, UnmatchedKind, UnmatchedQuery
from bot.storage.base import Store
from bot.storage.migrate import migrate_sqlite_to_postgres
from bot.storage.postgres import PostgresStore
from bot.storage.sqlite import MIGRATIONS, SqliteStore
from tests.support.paths import ROOT
from tests.support.storage import full_state, record

USERS = (1, 2, 3, 2**40)
SUPPORT_POSTS = ((-100, 10, 1), (-100, 11, 2), (-200, 10, 3))


async def fill(store: Store) -> None:
    """Give every table rows worth comparing: states, history, questions, subscriptions, posts."""
    for n, user in enumerate(USERS):
        lines = [record(user, 5.0, o) for o in (Outcome.STARTED, Outcome.NEXT, Outcome.SOLVED)]
        await store.save(full_state(user).with_(lang="ja" if n % 2 else "en"), lines)
        await store.save(full_state(user), [record(user, 1.0 + n)])  # an older line saved later
        await store.record_unmatched(
            UnmatchedQuery(user, f"写真 {n}\x00?", UnmatchedKind.NO_MATCH, None, 10.0 + n)
        )
        await store.record_unmatched(
            UnmatchedQuery(user, "again", UnmatchedKind.DID_YOU_MEAN, NONE_OF_THESE, 20.0 + n)
        )
        await store.subscribe(
            Subscription(
                user, -user, "ja", "mail_not_working", Device.MAC, ("iCloudメール",), float(n)
            )
        )
    for chat_id, message_id, user in SUPPORT_POSTS:
        await store.link_support_message(chat_id, message_id, user, 30.0)


async def contents(store: Store) -> dict[str, Any]:
    """Everything the bot can read back through the Store interface."""
    return {
        "states": [await store.load(u) for u in USERS],
        "history": [await store.history(u) for u in USERS],
        "outcomes": await store.outcomes_since(0.0),
        "by_user": [lines async for lines in store.outcomes_by_user(0.0)],
        # PostgreSQL's text holds no NUL: the copy keeps the rest of the question.
        "unmatched": [
            q.__class__(q.user_id, q.text.replace("\x00", "\ufffd"), q.kind, q.choice, q.at)
            for q in await store.unmatched_since(0.0)
        ],
        "subscriptions": await store.subscriptions(),
        "support": [await store.support_user(c, m) for c, m, _ in SUPPORT_POSTS],
        "users": await store.user_count(),
    }


async def migrate_db(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate-db",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def with_password(url: str) -> str:
    # The test server trusts 127.0.0.1, so any password connects; it must never be printed.
    return url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")


async def test_migrate_db_copies_everything_and_refuses_to_copy_twice(
    tmp_path: Path, pg_url: str
) -> None:
    path = tmp_path / "bot.sqlite3"
    async with await SqliteStore.open(path) as sqlite:
        await fill(sqlite)
        expected = await contents(sqlite)
    target = with_password(pg_url)

    code, out, err = await migrate_db("--from", f"sqlite:{path}", "--to", target)
    assert (code, err) == (0, "")
    assert "history: 16 row(s)" in out and "users: 4 row(s)" in out
    assert "hunter2" not in out and "postgres:***@" in out

    async with await PostgresStore.open(pg_url) as pg:
        assert await contents(pg) == expected
    # Row for row, every table is the same (ids included).
    conn = await asyncpg.connect(pg_url)
    try:
        with closing(sqlite3.connect(path)) as src:
            for table, key in (("history", "id"), ("unmatched", "id"), ("users", "user_id")):
                old = [tuple(r) for r in src.execute(f"SELECT * FROM {table} ORDER BY {key}")]
                new = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")]
                if table == "unmatched":
                    old = [(*r[:2], r[2].replace("\x00", "\ufffd"), *r[3:]) for r in old]
                assert new == old, table
    finally:
        await conn.close()
    async with await PostgresStore.open(pg_url) as pg:
        # New ids come after the copied ones: a line saved now sorts after the old ones.
        await pg.save(UserState(1), [record(1, 5.0, Outcome.ABANDONED)])
        assert (await pg.history(1))[-1].outcome is Outcome.ABANDONED

    # Again into the same database: refused in one line, nothing duplicated.
    code, out, err = await migrate_db("--from", f"sqlite:{path}", "--to", target)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "already holds data" in err and "hunter2" not in err
    async with await PostgresStore.open(pg_url) as pg:
        assert len(await pg.outcomes_since(0.0)) == len(expected["outcomes"]) + 1


async def test_migrate_db_explains_bad_arguments_in_one_line(tmp_path: Path, pg_url: str) -> None:
    missing = tmp_path / "nothing.sqlite3"
    code, _, err = await migrate_db("--from", f"sqlite:{missing}", "--to", pg_url)
    assert code == 1 and err == f"error: no SQLite database at {missing}\n"
    assert not missing.exists()  # not created by asking
    code, _, err = await migrate_db("--from", str(missing), "--to", pg_url)
    assert code == 1 and "--from must be sqlite:PATH" in err
    code, _, err = await migrate_db("--from", f"sqlite:{missing}", "--to", "mysql://x")
    assert code == 1 and "postgresql://" in err and err.count("\n") == 1


async def test_an_older_sqlite_file_is_upgraded_then_copied(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "odd #1?" / "old.sqlite3"  # characters that mean something in a URI
    async with await SqliteStore.open(path, migrations=MIGRATIONS[:1]) as old:
        await old.save(full_state(7), [record(7, 1.0)])
    copied = dict(await migrate_sqlite_to_postgres(path, pg_url))
    assert copied == {
        "users": 1,
        "history": 1,
        "status_subscriptions": 0,
        "support_messages": 0,
        "unmatched": 0,
    }
    async with await PostgresStore.open(pg_url) as pg:
        assert await pg.load(7) == full_state(7)
        assert await pg.history(7) == [record(7, 1.0)]
