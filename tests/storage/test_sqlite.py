"""SqliteStore only: WAL, migrations, durability, damaged rows, the user_id rule."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.errors import BotError
from bot.storage.base import SchemaVersionError, StorageError
from bot.storage.sqlite import MIGRATIONS, SqliteStore
from tests.support.paths import ROOT
from tests.support.storage import by_user, full_state, query, question, record, subscription


async def test_sqlite_outcomes_by_user_reads_page_after_page(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.storage.sqlite

    monkeypatch.setattr(bot.storage.sqlite, "HISTORY_PAGE_USERS", 2)
    async with await SqliteStore.open(db_path) as store:
        for user in (5, 1, 4, 2, 3):
            await store.save(UserState(user), [record(user, 2.0), record(user, 1.0)])
        groups = await by_user(store, 0.0)
    assert [lines[0].user_id for lines in groups] == [1, 2, 3, 4, 5]
    assert all([r.at for r in lines] == [1.0, 2.0] for lines in groups)


async def test_sqlite_uses_wal_and_records_schema_version(db_path: Path) -> None:
    async with await SqliteStore.open(db_path):
        pass
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]
    versions = query(db_path, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, len(MIGRATIONS) + 1)]
    indexes = {name for (name,) in query(db_path, "SELECT name FROM sqlite_master")}
    assert {"users", "history", "history_user_id", "history_at"} <= indexes


async def test_sqlite_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bot.sqlite3"
    async with await SqliteStore.open(str(path)) as store:
        await store.save(UserState(1))
    assert path.is_file()


async def test_sqlite_reopening_keeps_data(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(full_state(), [record(42, 1.0), record(42, 2.0)])
    async with await SqliteStore.open(db_path) as store:
        assert await store.load(42) == full_state()
        assert await store.history(42) == [record(42, 1.0), record(42, 2.0)]
        assert await store.user_count() == 1


async def test_sqlite_refuses_a_newer_schema(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(UserState(1, lang="en"))
    newer = len(MIGRATIONS) + 1
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("INSERT INTO schema_version VALUES (?, 0)", (newer,))
    with pytest.raises(SchemaVersionError, match=f"version {newer}") as caught:
        await SqliteStore.open(db_path)
    assert isinstance(caught.value, BotError)
    # Refusing did not touch the data.
    assert query(db_path, "SELECT user_id, lang FROM users") == [(1, "en")]


async def test_sqlite_migrates_an_old_database(db_path: Path) -> None:
    async with await SqliteStore.open(db_path, migrations=MIGRATIONS[:1]) as store:
        await store.save(full_state(), [record(42, 1.0)])
    assert query(db_path, "SELECT max(version) FROM schema_version") == [(1,)]
    assert "history_at" not in {n for (n,) in query(db_path, "SELECT name FROM sqlite_master")}

    later = (*MIGRATIONS, ("CREATE TABLE subscriptions (user_id INTEGER PRIMARY KEY)",))
    async with await SqliteStore.open(db_path, migrations=later) as store:
        assert await store.load(42) == full_state()
        assert await store.history(42) == [record(42, 1.0)]
    assert query(db_path, "SELECT max(version) FROM schema_version") == [(len(later),)]
    names = {n for (n,) in query(db_path, "SELECT name FROM sqlite_master")}
    assert {"history_at", "history_user_id", "subscriptions"} <= names


async def test_sqlite_failed_migration_changes_nothing(db_path: Path) -> None:
    async with await SqliteStore.open(db_path):
        pass
    broken = (*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"))
    with pytest.raises(StorageError, match=r"cannot be used: .*syntax error"):
        await SqliteStore.open(db_path, migrations=broken)
    assert query(db_path, "SELECT max(version) FROM schema_version") == [(len(MIGRATIONS),)]
    assert "extra" not in {n for (n,) in query(db_path, "SELECT name FROM sqlite_master")}


async def test_sqlite_failed_save_changes_nothing(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(UserState(1, lang="en"), [record(1, 1.0)])
        unbindable = OutcomeRecord(1, object(), Device.MAC, None, Outcome.NEXT, 2.0)  # type: ignore[arg-type]
        with pytest.raises(sqlite3.Error):
            await store.save(full_state(1), [record(1, 2.0), unbindable])
        assert await store.load(1) == UserState(1, lang="en")
        assert await store.history(1) == [record(1, 1.0)]
        # The failed transaction was rolled back: the connection still works.
        await store.save(full_state(1))
        assert await store.load(1) == full_state(1)


DURABILITY_CHILD = """
import asyncio, sys
from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.storage.sqlite import SqliteStore

async def main():
    store = await SqliteStore.open(sys.argv[1])
    line = OutcomeRecord(7, "sync-stuck", Device.MAC, "restart", Outcome.SOLVED, 3.0)
    await store.save(UserState(7, lang="en", device=Device.MAC), [line])
    print("saved", flush=True)
    sys.stdin.readline()  # block, store still open, until killed

asyncio.run(main())
"""


async def test_sqlite_save_survives_kill_9(db_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", DURABILITY_CHILD, str(db_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()
        child.kill()  # SIGKILL: no close, no checkpoint, no atexit
        child.wait()
        assert line == "saved\n", child.stderr.read()
    assert child.returncode == -9
    async with await SqliteStore.open(db_path) as store:
        assert await store.load(7) == UserState(7, lang="en", device=Device.MAC)
        assert [r.outcome for r in await store.history(7)] == [Outcome.SOLVED]


async def test_sqlite_stores_a_state_in_the_form_earlier_versions_wrote(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(full_state(1))
    # Written by dataclasses.asdict until 2026-11-30: existing rows and new ones read alike.
    assert query(db_path, "SELECT state FROM users WHERE user_id = 1") == [
        (
            '{"walk":{"entry":"sync-stuck","device":"mac","path":["restart","sign-out",'
            '"reset-keychain"],"position":1,"message_id":9001,"started_at":1700000000.5},'
            '"pending_entry":"photos-missing","extra":{"subscribed":true,"seen":["a","b"],'
            '"nested":{"n":3,"ja":"写真"}}}',
        )
    ]


@pytest.mark.parametrize("blob", ["{not json", "[]", "null", '"text"', '{"walk": 5, "extra": 3}'])
async def test_sqlite_corrupted_state_loads_fresh(db_path: Path, blob: str) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(full_state(1))
        await store.save(full_state(2))
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE users SET state = ? WHERE user_id = 1", (blob,))
    async with await SqliteStore.open(db_path) as store:
        assert await store.load(1) == UserState(1, lang="en", device=Device.MAC)
        assert await store.load(2) == full_state(2)
        await store.save(full_state(1))  # and the user carries on
        assert await store.load(1) == full_state(1)


async def test_sqlite_skips_history_lines_it_cannot_read(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(UserState(1), [record(1, 1.0), record(1, 3.0)])
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute(
            "INSERT INTO history (user_id, entry, device, fix, outcome, at)"
            " VALUES (1, 'x', 'android', NULL, 'next', 2.0)"
        )
    async with await SqliteStore.open(db_path) as store:
        assert await store.history(1) == [record(1, 1.0), record(1, 3.0)]


async def test_sqlite_unmatched_question_belongs_to_a_stored_user(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        with pytest.raises(sqlite3.IntegrityError):
            await store.record_unmatched(question(99, 1.0))
        assert await store.unmatched_since(0) == []


async def test_sqlite_subscriptions_survive_reopening(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(UserState(1))
        await store.subscribe(subscription(1, 1.5))
    async with await SqliteStore.open(db_path) as store:
        assert await store.subscriptions() == [subscription(1, 1.5)]


async def test_sqlite_subscription_belongs_to_a_stored_user(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        with pytest.raises(sqlite3.IntegrityError):
            await store.subscribe(subscription(99, 1.0))
        assert await store.subscriptions() == []


async def test_sqlite_skips_subscriptions_it_cannot_read(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        for user in (1, 2, 3):
            await store.save(UserState(user))
            await store.subscribe(subscription(user, float(user)))
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE status_subscriptions SET device = 'toaster' WHERE user_id = 1")
        db.execute("UPDATE status_subscriptions SET services = '{broken' WHERE user_id = 2")
    async with await SqliteStore.open(db_path) as store:
        assert await store.subscriptions() == [subscription(3, 3.0)]


async def test_sqlite_forget_empties_every_table_about_the_user(db_path: Path) -> None:
    from bot.storage.base import USER_FREE_TABLES

    # A table someone adds later, without a foreign key: forget() still finds it.
    future: tuple[str, ...] = ("CREATE TABLE future_notes (user_id INTEGER, note TEXT)",)
    async with await SqliteStore.open(db_path, migrations=(*MIGRATIONS, future)) as store:
        for user in (1, 2):
            await store.save(full_state(user), [record(user, 1.0)])
            await store.link_support_message(-100, user, user, 1.0)
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("INSERT INTO future_notes VALUES (1, 'a'), (2, 'b')")
    async with await SqliteStore.open(db_path, migrations=(*MIGRATIONS, future)) as store:
        await store.forget(1)
    with closing(sqlite3.connect(db_path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [c[1] for c in db.execute(f'PRAGMA table_info("{table}")')]
            if table in USER_FREE_TABLES:
                continue
            # Every other table says whose data it holds, so that forget() can find it.
            assert "user_id" in columns, f"table {table} needs a user_id column"
            left = db.execute(f'SELECT count(*) FROM "{table}" WHERE user_id = 1').fetchone()
            assert left == (0,), table
        assert db.execute("SELECT count(*) FROM future_notes").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM history").fetchone() == (1,)


async def test_a_lone_surrogate_is_stored_as_a_replacement_character(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "bot.sqlite3") as store:
        await store.save(UserState(1, extra={"words": "a\ud800b"}))
        assert (await store.load(1)).extra["words"] == "a\ufffdb"
