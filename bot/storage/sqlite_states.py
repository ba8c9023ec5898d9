"""The users' rows SqliteStore last wrote, kept in memory: loading them needs no round trip.

A turn loads the user's state and saves it; on SQLite each load was a round trip to the
connection's thread (and, in a burst, a wait for the GIL there). Write-through: a row is kept
once its transaction has committed, exactly as written, and load rebuilds the state from it as
it would from the file (UserState.from_row of the same columns). The file stays the truth: a
restart (or a crash) starts with nothing kept and reads it, so nothing is lost and buttons on
old messages keep working. A write whose outcome is not known (it failed, or its caller was
cancelled while the trip ran) drops the user's row: the next load reads the file.

One process owns a SQLite file's users: one bot instance serves a SQLite file (several need
PostgreSQL, whose store keeps no such copy), and nothing else writes the users table while it
runs. Another process writing a user's row meanwhile would not be seen by this one until the row
was dropped from here (a restart, or the least recently used rows beyond `limit`).
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from bot.conversation.state import OutcomeRecord, UserState
from bot.storage.base import USER_FREE_TABLES, check_owner
from bot.storage.queues import OutboxRow, Outgoing
from bot.storage.sqlite_queues import (
    MARK_DONE,
    UPSERT_USER,
    Row,
    SqliteTrips,
    UserRow,
    insert_outbox,
    outbox_params,
    user_row,
)

T = TypeVar("T")
STATES_KEPT = 4096  # users whose rows are kept (about a kilobyte each), the most recent


class StateRows:
    """The rows last written for the most recently used users; forgets the oldest beyond limit."""

    __slots__ = ("_limit", "_rows")

    def __init__(self, limit: int = STATES_KEPT) -> None:
        self._limit = limit
        self._rows: OrderedDict[int, Row] = OrderedDict()

    def get(self, user_id: int) -> Row | None:
        """Return the user's row as last written, or None: read the file."""
        row = self._rows.get(user_id)
        if row is not None:
            self._rows.move_to_end(user_id)
        return row

    def put(self, user_id: int, row: Row) -> None:
        """Keep the row a committed transaction wrote for the user."""
        self._rows[user_id] = row
        self._rows.move_to_end(user_id)
        if len(self._rows) > self._limit:
            self._rows.popitem(last=False)

    def drop(self, user_id: int) -> None:
        """Forget the user's row: the file is read next time."""
        self._rows.pop(user_id, None)

    def __len__(self) -> int:
        return len(self._rows)


class SqliteStates(SqliteTrips):
    """The users' states of SqliteStore: load, save, forget; rows kept as written last."""

    _states: StateRows

    async def load(self, user_id: int) -> UserState:
        """Return the user's state, or a fresh one for an unknown user."""
        kept = self._states.get(user_id)
        if kept is not None:  # as written last: what the file holds
            return UserState.from_row(user_id, *kept)
        rows = await self._rows(
            "SELECT lang, device, state FROM users WHERE user_id = ?", (user_id,)
        )
        if not rows:
            return UserState(user_id)
        lang, device, blob = rows[0]
        return UserState.from_row(user_id, lang, device, blob)

    async def save(
        self,
        state: UserState,
        records: Sequence[OutcomeRecord] = (),
        *,
        outgoing: Sequence[Outgoing] = (),
        update_id: int | None = None,
    ) -> list[OutboxRow]:
        """Store the state, the history lines and what to send in one committed transaction."""
        check_owner(state, records)
        blobs = [m.to_json() for m in outgoing]
        lines = [
            (r.user_id, r.entry, r.device.value, r.fix, r.outcome.value, r.at) for r in records
        ]
        now = time.time()
        user = user_row(state, now)
        ids = await self._user_trip(state.user_id, _save_turn, user, lines, update_id, blobs, now)
        return [OutboxRow(i, m, now) for i, m in zip(ids, outgoing, strict=True)]

    async def _user_trip(
        self, user_id: int, fn: Callable[..., tuple[T, Row | None]], *args: Any
    ) -> T:
        """Run a transaction that may write the user's row in one trip (see _in_one_trip);
        fn returns its result and the row it wrote, if any, which is kept.

        If it fails, or its caller is cancelled while it runs, whether it committed is not
        known here: the user's kept row is dropped, and the next load reads the file.
        """
        try:
            result, written = await self._in_one_trip(fn, *args)
        except BaseException:
            self._states.drop(user_id)
            raise
        if written is not None:
            self._states.put(user_id, written)
        return result

    async def forget(self, user_id: int) -> None:
        """Delete everything stored about the user: their rows in every table with a user_id."""
        try:
            await self._delete_user(user_id)
        finally:  # committed or not: the next load reads the file
            self._states.drop(user_id)

    async def _delete_user(self, user_id: int) -> None:
        async with self._transaction() as db:
            tables = [
                name
                for (name,) in await db.execute_fetchall(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
                if name not in USER_FREE_TABLES and name != "users"
            ]
            for table in tables:  # the names come from the schema itself, not from input
                columns = await db.execute_fetchall(f'PRAGMA table_info("{table}")')
                if any(column[1] == "user_id" for column in columns):
                    await db.execute(f'DELETE FROM "{table}" WHERE user_id = ?', (user_id,))
            await db.execute("DELETE FROM users WHERE user_id = ?", (user_id,))


def _save_turn(
    conn: sqlite3.Connection,
    user: UserRow,
    lines: Sequence[tuple[Any, ...]],
    update_id: int | None,
    blobs: Sequence[str],
    now: float,
) -> tuple[list[int], Row]:
    """Save a turn in one transaction, in aiosqlite's thread; return the outbox rows' ids and
    the user's row as written.

    One thread round trip for the whole transaction instead of one per statement: while the
    event loop is busy (matching), each round trip can wait for the GIL (bench_bot lost 40% of
    its pastes to the inbox and outbox statements before this). One call, so a whole
    transaction: turns' saves are queued together (sqlite_gate.py).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(UPSERT_USER, user)
        if update_id is not None:
            conn.execute(MARK_DONE, (update_id, now, now))
        ids: list[int] = []
        if blobs:
            params = outbox_params(blobs, now)
            ids = sorted(int(row[0]) for row in conn.execute(insert_outbox(len(blobs)), params))
        if lines:
            conn.executemany(
                "INSERT INTO history (user_id, entry, device, fix, outcome, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                lines,
            )
        conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.OperationalError):  # COMMIT may have ended it already
            conn.execute("ROLLBACK")
        raise
    return ids, user[1:4]
