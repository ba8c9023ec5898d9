"""The users' rows SqliteStore keeps in memory: written through, the file still the truth."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from bot.content.knowledge import Device
from bot.conversation.state import UserState
from bot.storage.sqlite import SqliteStore
from bot.storage.sqlite_states import StateRows
from tests.support.storage import full_state, query


def set_lang(path: Path, user_id: int, lang: str) -> None:
    """Change a user's row in the file behind the store's back (another process)."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE users SET lang = ? WHERE user_id = ?", (lang, user_id))


async def test_a_restart_reads_the_file(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(full_state(1))
        assert await store.load(1) == full_state(1)
    set_lang(db_path, 1, "ja")  # while no bot runs
    async with await SqliteStore.open(db_path) as store:
        assert await store.load(1) == full_state(1).with_(lang="ja")


async def test_a_second_store_on_the_file_reads_what_the_first_wrote(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as first:
        await first.save(full_state(1))
        async with await SqliteStore.open(db_path) as second:
            assert await second.load(1) == full_state(1)
            await second.save(full_state(2))
        assert await first.load(2) == full_state(2)  # never kept by the first: from the file


async def test_a_kept_row_is_loaded_without_the_file(db_path: Path) -> None:
    # One process owns the file's users (sqlite_states.py): a row it wrote is not read again,
    # so a change made behind its back is seen only once the row is no longer kept.
    async with await SqliteStore.open(db_path) as store:
        await store.save(full_state(1))
        set_lang(db_path, 1, "ja")
        assert await store.load(1) == full_state(1)


async def test_the_state_loaded_is_the_one_the_file_gives(db_path: Path) -> None:
    # As stored, not as given: a lone surrogate replaced, an unknown language dropped.
    given = UserState(1, lang="xx", device=Device.MAC, extra={"words": "a\ud800b", "n": (1, 2)})
    async with await SqliteStore.open(db_path) as store:
        await store.save(given)
        kept = await store.load(1)
    async with await SqliteStore.open(db_path) as store:
        assert kept == await store.load(1)
    assert kept.lang is None and kept.extra == {"words": "a\ufffdb", "n": [1, 2]}


async def test_forget_drops_the_kept_row(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(full_state(1))
        await store.forget(1)
        assert await store.load(1) == UserState(1)
        await store.save(UserState(1, lang="ja"))
        assert await store.load(1) == UserState(1, lang="ja")
    assert query(db_path, "SELECT lang FROM users WHERE user_id = 1") == [("ja",)]


async def test_a_save_cancelled_on_its_way_leaves_the_file_to_tell(db_path: Path) -> None:
    async with await SqliteStore.open(db_path) as store:
        await store.save(UserState(1, lang="en"))
        saving = asyncio.create_task(store.save(UserState(1, lang="ja")))
        await asyncio.sleep(0)  # queued in the connection's thread, which commits it anyway
        saving.cancel()
        await asyncio.gather(saving, return_exceptions=True)
        await store.user_count()  # after the save's trip
        assert await store.load(1) == UserState(1, lang="ja")


def test_only_the_most_recently_used_rows_are_kept() -> None:
    rows = StateRows(limit=2)
    rows.put(1, ("en", None, "{}"))
    rows.put(2, ("ja", None, "{}"))
    assert rows.get(1) == ("en", None, "{}")  # now the most recent
    rows.put(3, ("en", "mac", "{}"))
    assert rows.get(2) is None  # the least recently used went
    assert (rows.get(1), rows.get(3)) == (("en", None, "{}"), ("en", "mac", "{}"))
    rows.drop(1)
    assert rows.get(1) is None and len(rows) == 1
