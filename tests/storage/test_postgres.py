"""PostgreSQL only: schema and migrations, the user lock and the leader across instances.

The store contract itself runs on PostgreSQL in test_store.py; these tests need a real server
(tests/support/postgres.py) and are skipped where PostgreSQL is not installed.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.errors import BotError
from bot.insights.unmatched import UnmatchedKind, UnmatchedQuery
from bot.storage.base import USER_FREE_TABLES, SchemaVersionError
from bot.storage.postgres import PG_MIGRATIONS, PostgresStore
from bot.storage.sqlite import MIGRATIONS
from tests.support.paths import ROOT
from tests.support.storage import full_state, record


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    async with await PostgresStore.open(pg_url) as s:
        yield s


async def sql(url: str, statement: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def tables(url: str) -> set[str]:
    rows = await sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {row[0] for row in rows}


def created_names(steps: tuple[tuple[str, ...], ...]) -> list[set[str]]:
    """The tables and indexes each migration step creates."""
    pattern = re.compile(r"CREATE (?:TABLE|INDEX) (\w+)")
    return [{m for s in step for m in pattern.findall(s)} for step in steps]


# Schema and migrations.


def test_migrations_stay_in_step_with_sqlite() -> None:
    # Step N creates the same tables and indexes on both, so a database moved by migrate-db
    # is at the same version and a new table (the inbox, the outbox) is added to both.
    assert created_names(PG_MIGRATIONS) == created_names(MIGRATIONS)


async def test_records_schema_version_and_every_table_names_its_user(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url):
        pass
    versions = await sql(pg_url, "SELECT version FROM schema_version ORDER BY version")
    assert [v[0] for v in versions] == list(range(1, len(PG_MIGRATIONS) + 1))
    names = await tables(pg_url)
    assert names == {
        "users",
        "history",
        "unmatched",
        "status_subscriptions",
        "support_messages",
    } | {"schema_version", "inbox", "outbox"}
    for table in names - USER_FREE_TABLES:
        columns = await sql(
            pg_url,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1",
            table,
        )
        assert "user_id" in {c[0] for c in columns}, f"table {table} needs a user_id column"


async def test_reopening_keeps_data(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url) as store:
        await store.save(full_state(), [record(42, 1.0), record(42, 2.0)])
    async with await PostgresStore.open(pg_url) as store:
        assert await store.load(42) == full_state()
        assert await store.history(42) == [record(42, 1.0), record(42, 2.0)]


async def test_refuses_a_newer_schema_without_touching_it(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url) as store:
        await store.save(UserState(1, lang="en"))
    newer = len(PG_MIGRATIONS) + 1
    await sql(pg_url, "INSERT INTO schema_version VALUES ($1, 0)", newer)
    with pytest.raises(SchemaVersionError, match=f"version {newer}") as caught:
        await PostgresStore.open(pg_url)
    assert isinstance(caught.value, BotError)
    assert [tuple(r) for r in await sql(pg_url, "SELECT user_id, lang FROM users")] == [(1, "en")]


async def test_migrates_an_old_database(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url, migrations=PG_MIGRATIONS[:1]):
        pass
    # Written as the first version did (today's save() needs the inbox and the outbox too).
    state = full_state()
    await sql(
        pg_url,
        "INSERT INTO users (user_id, lang, device, state, updated_at) VALUES ($1, $2, $3, $4, 0)",
        state.user_id,
        state.lang,
        None if state.device is None else state.device.value,
        state.to_json(),
    )
    line = record(42, 1.0)
    await sql(
        pg_url,
        "INSERT INTO history (user_id, entry, device, fix, outcome, at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        line.user_id,
        line.entry,
        line.device.value,
        line.fix,
        line.outcome.value,
        line.at,
    )
    assert "unmatched" not in await tables(pg_url)
    later = (*PG_MIGRATIONS, ("CREATE TABLE future_notes (user_id BIGINT, note TEXT)",))
    async with await PostgresStore.open(pg_url, migrations=later) as store:
        assert await store.load(42) == full_state()
        assert await store.history(42) == [record(42, 1.0)]
    assert await sql(pg_url, "SELECT max(version) FROM schema_version") == [(len(later),)]
    assert {"unmatched", "future_notes"} <= await tables(pg_url)


async def test_failed_migration_changes_nothing(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url, migrations=PG_MIGRATIONS[:2]):
        pass
    broken = (*PG_MIGRATIONS, ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"))
    with pytest.raises(asyncpg.PostgresSyntaxError):
        await PostgresStore.open(pg_url, migrations=broken)
    # DDL is transactional: not even the good steps 3 to 5 of that attempt stayed.
    assert await sql(pg_url, "SELECT max(version) FROM schema_version") == [(2,)]
    assert {"extra", "unmatched"}.isdisjoint(await tables(pg_url))


async def test_instances_starting_together_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(pg_url) for _ in range(4)))
    for s in stores:
        await s.close()
    rows = await sql(pg_url, "SELECT version FROM schema_version ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, len(PG_MIGRATIONS) + 1))


async def test_forget_empties_every_table_about_the_user(pg_url: str) -> None:
    # A table someone adds later, without a foreign key: forget() still finds it.
    future = ("CREATE TABLE future_notes (user_id BIGINT, note TEXT)",)
    async with await PostgresStore.open(pg_url, migrations=(*PG_MIGRATIONS, future)) as store:
        for user in (1, 2):
            await store.save(full_state(user), [record(user, 1.0)])
            await store.link_support_message(-100, user, user, 1.0)
        await sql(pg_url, "INSERT INTO future_notes VALUES (1, 'a'), (2, 'b')")
        await store.forget(1)
    for table in await tables(pg_url) - USER_FREE_TABLES:
        left = await sql(pg_url, f"SELECT count(*) FROM {table} WHERE user_id = 1")
        assert left == [(0,)], table
    assert await sql(pg_url, "SELECT count(*) FROM future_notes") == [(1,)]
    assert await sql(pg_url, "SELECT count(*) FROM history") == [(1,)]


async def test_failed_save_changes_nothing(store: PostgresStore) -> None:
    await store.save(UserState(1, lang="en"), [record(1, 1.0)])
    unbindable = OutcomeRecord(1, object(), record(1, 2.0).device, None, Outcome.NEXT, 2.0)  # type: ignore[arg-type]
    with pytest.raises((asyncpg.DataError, TypeError)):
        await store.save(full_state(1), [record(1, 2.0), unbindable])
    assert await store.load(1) == UserState(1, lang="en")
    assert await store.history(1) == [record(1, 1.0)]
    await store.save(full_state(1))
    assert await store.load(1) == full_state(1)


async def test_unmatched_question_belongs_to_a_stored_user(store: PostgresStore) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await store.record_unmatched(UnmatchedQuery(99, "x", UnmatchedKind.NO_MATCH, None, 1.0))
    assert await store.unmatched_since(0) == []


async def test_a_nul_in_a_question_is_kept_as_a_replacement_character(
    store: PostgresStore,
) -> None:
    await store.save(UserState(1))
    await store.record_unmatched(UnmatchedQuery(1, "a\x00b", UnmatchedKind.NO_MATCH, None, 1.0))
    assert [q.text for q in await store.unmatched_since(0)] == ["a\ufffdb"]


async def test_big_telegram_ids_round_trip(store: PostgresStore) -> None:
    user = 2**52 + 7  # Telegram's ids need more than 32 bits
    await store.save(UserState(user), [record(user, 1.0)])
    await store.link_support_message(-1_001_234_567_890, 2**40, user, 1.0)
    assert await store.history(user) == [record(user, 1.0)]
    assert await store.support_user(-1_001_234_567_890, 2**40) == user


async def test_outcomes_by_user_reads_page_after_page(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.storage.postgres

    monkeypatch.setattr(bot.storage.postgres, "HISTORY_PAGE_USERS", 2)
    for user in (5, 1, 4, 2, 3):
        await store.save(UserState(user), [record(user, 2.0), record(user, 1.0)])
    groups = [lines async for lines in store.outcomes_by_user(0.0)]
    assert [lines[0].user_id for lines in groups] == [1, 2, 3, 4, 5]
    assert all([r.at for r in lines] == [1.0, 2.0] for lines in groups)


@pytest.mark.parametrize("blob", ["{not json", "[]", "null", '{"walk": 5, "extra": 3}'])
async def test_corrupted_state_loads_fresh(store: PostgresStore, pg_url: str, blob: str) -> None:
    await store.save(full_state(1))
    await store.save(full_state(2))
    await sql(pg_url, "UPDATE users SET state = $1 WHERE user_id = 1", blob)
    assert await store.load(1) == UserState(1, lang="en", device=full_state().device)
    assert await store.load(2) == full_state(2)


# One user's updates across instances.


async def test_user_lock_makes_a_second_instance_wait(pg_url: str) -> None:
    async with (
        await PostgresStore.open(pg_url) as first,
        await PostgresStore.open(pg_url) as second,
    ):
        events: list[str] = []
        holding = asyncio.Event()
        release = asyncio.Event()

        async def update_on_first() -> None:
            async with first.user_lock(7):
                events.append("first in")
                holding.set()
                await release.wait()
                await first.save(UserState(7, lang="en"))
                events.append("first out")

        async def update_on_second() -> None:
            await holding.wait()
            async with second.user_lock(7):
                events.append("second in")
                # It sees what the first committed before letting go.
                assert (await second.load(7)).lang == "en"

        one = asyncio.create_task(update_on_first())
        two = asyncio.create_task(update_on_second())
        try:
            await holding.wait()
            # Another user is not held up meanwhile.
            async with asyncio.timeout(5), second.user_lock(8):
                await second.save(UserState(8))
            await asyncio.sleep(0.3)
            assert events == ["first in"]  # the second instance is still waiting
            release.set()
            async with asyncio.timeout(10):
                await asyncio.gather(one, two)
        finally:
            for task in (one, two):
                task.cancel()
        assert events == ["first in", "first out", "second in"]


async def test_user_lock_calls_share_its_connection_without_starving_the_pool(
    pg_url: str,
) -> None:
    # Two connections in the pool and five users locked at once: the calls inside each lock
    # use the lock's own connection, so nobody waits for a connection that never comes back.
    async with await PostgresStore.open(pg_url, min_size=1, max_size=2) as store:

        async def update(user: int) -> None:
            async with store.user_lock(user), store.user_lock(user + 100):  # nested: same conn
                state = await store.load(user)
                # Several calls at once inside the lock take turns on its connection.
                await asyncio.gather(
                    store.save(state.with_(lang="ja"), [record(user, 1.0)]),
                    store.user_count(),
                    store.history(user),
                )

        async with asyncio.timeout(20):
            await asyncio.gather(*(update(u) for u in range(1, 6)))
        assert await store.user_count() == 5
        assert [r.at for r in await store.history(3)] == [1.0]


async def test_a_task_that_outlives_the_lock_goes_back_to_the_pool(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url, min_size=1, max_size=2) as store:
        go_on = asyncio.Event()

        async def later() -> UserState:
            await go_on.wait()
            return await store.load(1)  # the lock's connection is back in the pool by now

        async with store.user_lock(1):
            await store.save(UserState(1, lang="ja"))
            straggler = asyncio.create_task(later())  # inherits the lock's context
        # Someone else borrows the connection that held the lock, and is busy on it.
        async with store.user_lock(2), asyncio.timeout(10):
            go_on.set()
            busy = asyncio.gather(*(store.save(UserState(2, extra={"n": n})) for n in range(20)))
            assert (await straggler).lang == "ja"
            await busy


async def advisory_locks(url: str) -> int:
    rows = await sql(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    return int(rows[0][0])


async def test_a_failed_or_cancelled_update_leaves_no_lock_behind(pg_url: str) -> None:
    async with (
        await PostgresStore.open(pg_url) as first,
        await PostgresStore.open(pg_url, min_size=1, max_size=1) as second,
    ):
        with pytest.raises(RuntimeError):
            async with second.user_lock(1), second.user_lock(3):
                raise RuntimeError("the engine failed")
        assert await advisory_locks(pg_url) == 0

        async def enter(user: int) -> None:
            async with second.user_lock(user):
                pass

        async with first.user_lock(2):
            waiter = asyncio.create_task(enter(2))
            await asyncio.sleep(0.3)
            waiter.cancel()  # gives up while the server has it waiting for the lock
            with pytest.raises(asyncio.CancelledError):
                await waiter
        async with asyncio.timeout(10):
            async with first.user_lock(1), first.user_lock(2), first.user_lock(3):
                pass
            await enter(2)  # the second's only connection is usable and holds nothing
        assert await advisory_locks(pg_url) == 0


# One leader among instances.


async def test_leader_moves_to_a_second_instance_only_when_the_first_closes(
    pg_url: str,
) -> None:
    async with (
        await PostgresStore.open(pg_url) as first,
        await PostgresStore.open(pg_url) as second,
    ):
        lead_one = first.leader("status-poller")
        lead_two = second.leader("status-poller")
        try:
            assert await lead_one.held() is True
            assert await lead_two.held() is False
            assert await lead_one.held() is True  # asking again keeps it
            assert await lead_two.held() is False
            async with second.leader("prune") as other_job:  # another job: its own lead
                assert await other_job.held() is True
            await lead_one.close()
            assert await lead_two.held() is True
            assert await lead_one.held() is False  # now the first has to wait
        finally:
            await lead_one.close()
            await lead_two.close()


async def test_a_leader_whose_connection_is_killed_knows_it_lost(pg_url: str) -> None:
    async with await PostgresStore.open(pg_url) as store, store.leader("learning") as lead:
        assert await lead.held() is True
        await sql(
            pg_url,
            # With a timeout it returns once the backend is gone, not when it was signalled.
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        assert await lead.held() is False  # noticed, not assumed
        assert await lead.held() is True  # nobody else has it: taken again


HOLDER_CHILD = """
import asyncio, sys
from bot.storage.postgres import PostgresStore

async def main():
    store = await PostgresStore.open(sys.argv[1])
    lead = store.leader("status-poller")
    assert await lead.held()
    async with store.user_lock(7):
        print("holding", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # block, holding both, until killed

asyncio.run(main())
"""


async def test_locks_of_a_killed_process_pass_to_the_next_instance(pg_url: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER_CHILD, pg_url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        line = await asyncio.to_thread(child.stdout.readline)
        assert line == "holding\n", child.stderr.read()
        async with await PostgresStore.open(pg_url) as store, store.leader("status-poller") as lead:
            assert await lead.held() is False
            waiting = asyncio.create_task(asyncio.wait_for(lead.wait(0.1), 20))
            locked = asyncio.Event()

            async def take_user() -> None:
                async with store.user_lock(7):
                    locked.set()

            taker = asyncio.create_task(take_user())
            try:
                await asyncio.sleep(0.3)
                assert not locked.is_set() and not waiting.done()
                child.kill()  # SIGKILL: no close, no unlock; the server sees the connection drop
                await asyncio.to_thread(child.wait)
                async with asyncio.timeout(20):
                    await asyncio.gather(waiting, taker)
            finally:
                child.kill()
                for task in (waiting, taker):
                    task.cancel()
            assert locked.is_set() and await lead.held() is True


async def test_a_lost_or_busy_server_is_a_storage_failure_but_a_wrong_statement_is_not(
    pg_url: str,
) -> None:
    from bot.storage.base import is_storage_failure

    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(asyncpg.PostgresError) as wrong:
            await conn.fetchval("SELECT no_such_column FROM pg_class")
        assert not is_storage_failure(wrong.value)  # trying again would fail again
        await sql(pg_url, "SELECT pg_terminate_backend($1)", conn.get_server_pid())
        for _ in range(100):  # bounded: the server's notice arrives within a second
            if conn.is_closed():
                break
            await asyncio.sleep(0.01)
        with pytest.raises(Exception) as lost:  # the server ended our session
            await conn.fetchval("SELECT 1")
        assert is_storage_failure(lost.value), repr(lost.value)
    finally:
        conn.terminate()
    for failed in (
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.DiskFullError("could not extend file"),
        asyncpg.exceptions.InterfaceError("connection is closed"),
        ConnectionResetError("reset by peer"),
    ):
        assert is_storage_failure(failed), failed
    assert not is_storage_failure(asyncpg.exceptions.UniqueViolationError("duplicate key"))
