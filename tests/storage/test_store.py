"""Contract tests for every Store, and SQLite-only tests on a real file."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.apple_status.status import Subscription
from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState, Walk
from bot.errors import BotError
from bot.insights.unmatched import NONE_OF_THESE, UnmatchedKind, UnmatchedQuery
from bot.storage.store import MIGRATIONS, MemoryStore, SchemaVersionError, SqliteStore, Store
from tests.support.paths import ROOT


def full_state(user_id: int = 42) -> UserState:
    return UserState(
        user_id=user_id,
        lang="en",
        device=Device.MAC,
        walk=Walk(
            entry="sync-stuck",
            device=Device.MAC,
            path=("restart", "sign-out", "reset-keychain"),
            position=1,
            message_id=9001,
            started_at=1_700_000_000.5,
        ),
        pending_entry="photos-missing",
        extra={"subscribed": True, "seen": ["a", "b"], "nested": {"n": 3, "ja": "写真"}},
    )


def record(user_id: int, at: float, outcome: Outcome = Outcome.NEXT) -> OutcomeRecord:
    return OutcomeRecord(user_id, "sync-stuck", Device.IPHONE, "restart", outcome, at)


def query(path: Path, sql: str) -> list[Any]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        async with await SqliteStore.open(tmp_path / "db" / "bot.sqlite3") as s:
            yield s
    elif request.param == "postgres":
        from bot.storage.postgres import PostgresStore

        # A real server (tests/support/postgres.py); skipped where PostgreSQL is not installed.
        url = request.getfixturevalue("pg_url")
        async with await PostgresStore.open(url) as p:
            yield p
    else:
        async with MemoryStore() as m:
            yield m


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.sqlite3"


# Contract: every Store behaves the same.


async def test_unknown_user_gets_fresh_state(store: Store) -> None:
    assert await store.load(5) == UserState(5)
    assert await store.history(5) == []
    assert await store.user_count() == 0


async def test_round_trip_keeps_every_field(store: Store) -> None:
    state = full_state()
    await store.save(state)
    loaded = await store.load(42)
    assert loaded == state
    assert loaded.walk is not None and loaded.walk.path == ("restart", "sign-out", "reset-keychain")
    assert isinstance(loaded.device, Device)


async def test_save_overwrites_and_can_clear_fields(store: Store) -> None:
    await store.save(full_state())
    cleared = UserState(42, lang="ja")
    await store.save(cleared)
    assert await store.load(42) == cleared
    assert await store.user_count() == 1


async def test_saved_state_does_not_alias_callers_extra(store: Store) -> None:
    state = UserState(1, extra={"k": 1})
    await store.save(state)
    state.extra["k"] = 2
    assert (await store.load(1)).extra == {"k": 1}


async def test_history_is_oldest_first_and_per_user(store: Store) -> None:
    await store.save(UserState(1), [record(1, 30.0, Outcome.STARTED)])
    await store.save(UserState(2), [record(2, 15.0)])
    await store.save(UserState(1), [record(1, 10.0), record(1, 20.0, Outcome.SOLVED)])
    assert [(r.at, r.outcome) for r in await store.history(1)] == [
        (10.0, Outcome.NEXT),
        (20.0, Outcome.SOLVED),
        (30.0, Outcome.STARTED),
    ]
    assert await store.history(2) == [record(2, 15.0)]


async def test_same_time_lines_keep_insertion_order(store: Store) -> None:
    lines = [record(1, 5.0, o) for o in (Outcome.STARTED, Outcome.NEXT, Outcome.SOLVED)]
    await store.save(UserState(1), lines)
    assert await store.history(1) == lines


async def test_history_keeps_a_missing_fix(store: Store) -> None:
    line = OutcomeRecord(1, "sync-stuck", Device.WINDOWS, None, Outcome.EXHAUSTED, 1.0)
    await store.save(UserState(1), [line])
    assert await store.history(1) == [line]


async def test_outcomes_since_spans_users_from_the_bound(store: Store) -> None:
    await store.save(UserState(1), [record(1, 10.0), record(1, 30.0)])
    await store.save(UserState(2), [record(2, 20.0), record(2, 5.0)])
    assert await store.outcomes_since(20.0) == [record(2, 20.0), record(1, 30.0)]
    assert await store.outcomes_since(31.0) == []
    assert len(await store.outcomes_since(0.0)) == 4


async def by_user(store: Store, since: float) -> list[list[OutcomeRecord]]:
    return [lines async for lines in store.outcomes_by_user(since)]


async def test_outcomes_by_user_gives_each_users_lines_together_oldest_first(
    store: Store,
) -> None:
    await store.save(UserState(1), [record(1, 30.0), record(1, 10.0), record(1, 20.0)])
    await store.save(UserState(2), [record(2, 15.0), record(2, 5.0)])
    await store.save(UserState(3), [record(3, 1.0)])
    groups = {lines[0].user_id: lines for lines in await by_user(store, 5.0)}
    assert groups == {
        1: [record(1, 10.0), record(1, 20.0), record(1, 30.0)],
        2: [record(2, 5.0), record(2, 15.0)],
    }
    since = [line for lines in await by_user(store, 12.0) for line in lines]
    assert sorted(since, key=lambda r: r.at) == await store.outcomes_since(12.0)
    assert await by_user(store, 31.0) == []


async def test_sqlite_outcomes_by_user_reads_page_after_page(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.storage.store

    monkeypatch.setattr(bot.storage.store, "HISTORY_PAGE_USERS", 2)
    async with await SqliteStore.open(db_path) as store:
        for user in (5, 1, 4, 2, 3):
            await store.save(UserState(user), [record(user, 2.0), record(user, 1.0)])
        groups = await by_user(store, 0.0)
    assert [lines[0].user_id for lines in groups] == [1, 2, 3, 4, 5]
    assert all([r.at for r in lines] == [1.0, 2.0] for lines in groups)


async def test_history_of_another_user_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="user 1"):
        await store.save(UserState(1), [record(1, 1.0), record(2, 2.0)])
    assert await store.user_count() == 0
    assert await store.outcomes_since(0.0) == []


async def test_forget_deletes_state_and_history(store: Store) -> None:
    await store.save(full_state(1), [record(1, 1.0)])
    await store.save(full_state(2), [record(2, 2.0)])
    await store.forget(1)
    assert await store.load(1) == UserState(1)
    assert await store.history(1) == []
    assert await store.history(2) == [record(2, 2.0)]
    assert await store.user_count() == 1
    await store.forget(12345)  # unknown: nothing to do, no error


async def test_prune_deletes_only_older_lines(store: Store) -> None:
    await store.save(UserState(1), [record(1, 10.0), record(1, 20.0)])
    await store.save(UserState(2), [record(2, 5.0), record(2, 25.0)])
    assert await store.prune(20.0) == 2
    assert await store.outcomes_since(0.0) == [record(1, 20.0), record(2, 25.0)]
    assert await store.prune(20.0) == 0
    assert await store.user_count() == 2  # states stay


async def test_user_count(store: Store) -> None:
    for user_id in (1, 2, 3, 2):
        await store.save(UserState(user_id))
    assert await store.user_count() == 3


async def test_concurrent_users(store: Store) -> None:
    users = range(1000, 1500)

    async def conversation(user_id: int) -> None:
        state = await store.load(user_id)
        await store.save(state.with_(lang="en"), [record(user_id, 1.0, Outcome.STARTED)])
        state = await store.load(user_id)
        await store.save(state.with_(device=Device.WINDOWS), [record(user_id, 2.0)])

    await asyncio.gather(*(conversation(u) for u in users))
    assert await store.user_count() == len(users)
    for user_id in users:
        assert await store.load(user_id) == UserState(user_id, lang="en", device=Device.WINDOWS)
        assert [r.at for r in await store.history(user_id)] == [1.0, 2.0]


async def test_close_twice_is_harmless(store: Store) -> None:
    await store.close()
    await store.close()


# SQLite only.


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
    with pytest.raises(sqlite3.OperationalError):
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
from bot.storage.store import SqliteStore

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


# Contract: questions that matched nothing (bot/unmatched.py).


def question(user_id: int, at: float, choice: str | None = None) -> UnmatchedQuery:
    return UnmatchedQuery(user_id, "my toaster is on fire", UnmatchedKind.NO_MATCH, choice, at)


async def test_unmatched_questions_round_trip_oldest_first(store: Store) -> None:
    await store.save(UserState(1))
    await store.save(UserState(2))
    later = UnmatchedQuery(2, "写真が消えた", UnmatchedKind.DID_YOU_MEAN, None, 20.0)
    await store.record_unmatched(later)
    await store.record_unmatched(question(1, 10.0))
    assert await store.unmatched_since(0) == [question(1, 10.0), later]
    assert await store.unmatched_since(15.0) == [later]


async def test_unmatched_choice_updates_the_same_question(store: Store) -> None:
    await store.save(UserState(1))
    await store.record_unmatched(question(1, 10.0))
    await store.record_unmatched(question(1, 10.0, NONE_OF_THESE))
    await store.record_unmatched(question(1, 10.0, "cannot_connect_icloud"))
    await store.record_unmatched(question(1, 11.0))  # another question
    assert await store.unmatched_since(0) == [
        question(1, 10.0, "cannot_connect_icloud"),
        question(1, 11.0),
    ]


async def test_forget_and_prune_delete_unmatched_questions(store: Store) -> None:
    for user in (1, 2):
        await store.save(UserState(user))
        await store.record_unmatched(question(user, 10.0 * user))
    await store.record_unmatched(question(1, 30.0))
    await store.forget(1)
    assert await store.unmatched_since(0) == [question(2, 20.0)]
    await store.save(UserState(3))
    await store.record_unmatched(question(3, 40.0))
    await store.prune(older_than=25.0)
    assert await store.unmatched_since(0) == [question(3, 40.0)]


async def test_sqlite_unmatched_question_belongs_to_a_stored_user(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        with pytest.raises(sqlite3.IntegrityError):
            await store.record_unmatched(question(99, 1.0))
        assert await store.unmatched_since(0) == []


# Contract: subscriptions to Apple's System Status (bot/status.py).


def subscription(
    user_id: int, at: float, services: tuple[str, ...] = ("iCloud Mail",)
) -> Subscription:
    return Subscription(user_id, -user_id, "ja", "mail_not_working", Device.MAC, services, at)


async def test_subscriptions_round_trip_oldest_first(store: Store) -> None:
    for user in (1, 2, 3):
        await store.save(UserState(user))
    assert await store.subscriptions() == []
    await store.subscribe(subscription(2, 20.0, ("iCloudメール", "iCloud Drive")))
    await store.subscribe(subscription(1, 30.0))
    await store.subscribe(subscription(3, 10.0, ()))
    assert await store.subscriptions() == [
        subscription(3, 10.0, ()),
        subscription(2, 20.0, ("iCloudメール", "iCloud Drive")),
        subscription(1, 30.0),
    ]


async def test_subscribing_again_replaces_and_unsubscribe_spares_a_newer_one(
    store: Store,
) -> None:
    await store.save(UserState(1))
    old, new = subscription(1, 10.0), subscription(1, 20.0, ("App Store",))
    await store.subscribe(old)
    await store.subscribe(new)
    assert await store.subscriptions() == [new]
    assert await store.unsubscribe(old) is False  # the poller read it before the user re-tapped
    assert await store.subscriptions() == [new]
    assert await store.unsubscribe(new) is True
    assert await store.unsubscribe(new) is False
    assert await store.subscriptions() == []


async def test_forget_deletes_the_subscription(store: Store) -> None:
    for user in (1, 2):
        await store.save(UserState(user))
        await store.subscribe(subscription(user, float(user)))
    await store.forget(1)
    assert await store.subscriptions() == [subscription(2, 2.0)]


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


# Posts in the support group, linked to users (a person took over).


async def test_support_posts_are_linked_forgotten_and_pruned(store: Store) -> None:
    for user in (1, 2):
        await store.save(UserState(user))
    await store.link_support_message(-100, 10, 1, 5.0)
    await store.link_support_message(-100, 11, 1, 50.0)
    await store.link_support_message(-100, 12, 2, 50.0)
    await store.link_support_message(-200, 10, 2, 50.0)  # another chat, same message id
    assert await store.support_user(-100, 10) == 1
    assert await store.support_user(-200, 10) == 2
    assert await store.support_user(-100, 99) is None
    await store.prune(20.0)
    assert await store.support_user(-100, 10) is None
    assert await store.support_user(-100, 11) == 1
    await store.forget(1)
    assert await store.support_user(-100, 11) is None
    assert await store.support_user(-100, 12) == 2


async def test_sqlite_forget_empties_every_table_about_the_user(db_path: Path) -> None:
    from bot.storage.store import USER_FREE_TABLES

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
