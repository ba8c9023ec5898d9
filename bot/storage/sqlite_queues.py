"""The inbox and outbox of SqliteStore (bot/storage/queues.py), apart from its other tables."""

from __future__ import annotations

import abc
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any, TypeVar

import aiosqlite

from bot.conversation.state import UserState
from bot.storage.base import anchored, device_column
from bot.storage.queues import Anchor, InboxUpdate, OutboxRow, Outgoing
from bot.storage.unicode import valid_unicode

logger = logging.getLogger(__name__)

T = TypeVar("T")
DELETE_BATCH = 500  # ids per DELETE (SQLite allows 32766 parameters per statement)


# An upsert, not INSERT OR REPLACE: replacing would delete the row and cascade.
UPSERT_USER = (
    "INSERT INTO users (user_id, lang, device, state, updated_at)"
    " VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (user_id) DO UPDATE SET lang = excluded.lang,"
    " device = excluded.device, state = excluded.state,"
    " updated_at = excluded.updated_at"
)
# The update's JSON goes (it is the user's words); its id stays to skip a redelivery.
MARK_DONE = (
    "INSERT INTO inbox (update_id, payload, received_at, done_at) VALUES (?, NULL, ?, ?)"
    " ON CONFLICT (update_id) DO UPDATE SET payload = NULL,"
    " done_at = coalesce(inbox.done_at, excluded.done_at)"
)


# A user's row: (user_id, lang, device, state, updated_at); Row: the middle three, which
# UserState.from_row reads (and SqliteStore keeps, sqlite_states.py).
UserRow = tuple[int, str | None, str | None, str, float]
Row = tuple[str | None, str | None, str]


def user_row(state: UserState, now: float) -> UserRow:
    """Return the parameters of UPSERT_USER."""
    # valid_unicode: never fatal, whatever a channel let in.
    return (state.user_id, state.lang, device_column(state), valid_unicode(state.to_json()), now)


def insert_outbox(count: int) -> str:
    """Return the statement that appends `count` messages to the outbox, returning their ids.

    One statement for all (a thread hop each costs more than the insert); the rowids of one
    insert in one write transaction are consecutive, so sorted they follow the VALUES.
    """
    values = ", ".join("(?, ?, json_extract(?, '$.chat_id'))" for _ in range(count))
    return f"INSERT INTO outbox (message, created_at, chat_id) VALUES {values} RETURNING id"


def outbox_params(blobs: Sequence[str], now: float) -> list[Any]:
    """Return the parameters of insert_outbox: each message, its time, and again for its chat."""
    return [p for blob in blobs for p in (blob, now, blob)]


async def mark_done(db: aiosqlite.Connection, update_id: int, now: float) -> None:
    """Record an update as handled (inside the caller's transaction)."""
    await db.execute(MARK_DONE, (update_id, now, now))


async def enqueue(
    db: aiosqlite.Connection, messages: Sequence[Outgoing], blobs: Sequence[str], now: float
) -> list[OutboxRow]:
    """Append messages to the outbox (inside the caller's transaction); return their rows."""
    if not messages:
        return []
    found = await db.execute_fetchall(insert_outbox(len(blobs)), outbox_params(blobs, now))
    ids = sorted(int(row[0]) for row in found)
    return [OutboxRow(i, m, now) for i, m in zip(ids, messages, strict=True)]


class SqliteTrips(abc.ABC):
    """What SqliteStore's parts ask of its connection: a transaction, a query, a round trip."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """Run the block in one write transaction."""

    @abc.abstractmethod
    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one query."""

    @abc.abstractmethod
    async def _in_one_trip(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) in the connection's thread: one round trip."""


class SqliteQueues(SqliteTrips):
    """The inbox and outbox methods of the Store contract, on SqliteStore's connection."""

    @abc.abstractmethod
    async def _user_trip(
        self, user_id: int, fn: Callable[..., tuple[T, Row | None]], *args: Any
    ) -> T:
        """The same, for a transaction that may write the user's row (kept, sqlite_states.py)."""

    async def inbox_add(self, updates: Sequence[InboxUpdate]) -> list[int]:
        """Keep the updates not seen before, in one transaction; return their ids in order."""
        if not updates:
            return []
        # One statement (atomic on its own, one thread hop for a whole getUpdates batch).
        values = ", ".join("(?, ?, ?, ?)" for _ in updates)
        params = [p for u in updates for p in (u.update_id, u.payload, u.received_at, u.user_key)]
        found = await self._rows(
            f"INSERT INTO inbox (update_id, payload, received_at, user_key) VALUES {values}"
            " ON CONFLICT (update_id) DO NOTHING RETURNING update_id",
            params,
        )
        fresh = {int(row[0]) for row in found}
        return [u.update_id for u in updates if u.update_id in fresh]

    async def inbox_pending(self, user_key: int | None = None) -> list[InboxUpdate]:
        """Return the kept updates not handled yet (of one user_key, if given), oldest first."""
        sql = "SELECT update_id, payload, received_at, user_key FROM inbox WHERE done_at IS NULL"
        if user_key is None:
            rows = await self._rows(sql + " ORDER BY update_id")
        else:
            rows = await self._rows(sql + " AND user_key = ? ORDER BY update_id", (user_key,))
        return [InboxUpdate(int(u), str(p), float(at), key) for u, p, at, key in rows]

    async def inbox_done(self, update_id: int) -> None:
        """Mark an update handled without a turn to save; only its id and time are kept."""
        async with self._transaction() as db:
            await mark_done(db, update_id, time.time())

    async def enqueue(self, messages: Sequence[Outgoing]) -> list[OutboxRow]:
        """Put messages decided outside a turn in the outbox; return their rows."""
        if not messages:
            return []
        blobs = [m.to_json() for m in messages]
        async with self._transaction() as db:
            return await enqueue(db, messages, blobs, time.time())

    async def outbox_pending(self, chat_id: int | None = None) -> list[OutboxRow]:
        """Return the messages not delivered yet (to one chat, if given), in decided order."""
        sql = "SELECT id, message, created_at FROM outbox"
        if chat_id is None:
            rows = await self._rows(sql + " ORDER BY id")
        else:
            rows = await self._rows(sql + " WHERE chat_id = ? ORDER BY id", (chat_id,))
        pending = []
        for row_id, blob, created in rows:
            try:
                pending.append(OutboxRow(int(row_id), Outgoing.from_json(blob), float(created)))
            except ValueError:  # written by a newer bot, or damaged: it cannot be sent
                logger.warning("skipping unreadable outbox message %s", row_id)
        return pending

    async def outbox_done(
        self, row_ids: Sequence[int], anchor: tuple[Anchor, int] | None = None
    ) -> None:
        """Delete delivered or refused messages; record a walk's new message id with them."""
        if anchor is None:
            # One statement, committed on its own: the sender marks deliveries in batches.
            for start in range(0, len(row_ids), DELETE_BATCH):
                batch = row_ids[start : start + DELETE_BATCH]
                marks = ", ".join("?" for _ in batch)
                await self._rows(f"DELETE FROM outbox WHERE id IN ({marks})", batch)
            return
        # A reply that shows a walk's step (most): one round trip, as a turn's save is.
        await self._user_trip(anchor[0].user_id, _done_anchored, row_ids, anchor, time.time())


def _done_anchored(
    conn: sqlite3.Connection, row_ids: Sequence[int], anchor: tuple[Anchor, int], now: float
) -> tuple[None, Row | None]:
    """Record a walk's new message id and delete its delivered rows in one transaction, in the
    connection's thread: one round trip instead of five (BEGIN, SELECT, upsert, DELETE, COMMIT).
    Return nothing, and the user's row if it was written.
    """
    spec, message_id = anchor
    written: Row | None = None
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute(
            "SELECT lang, device, state FROM users WHERE user_id = ?", (spec.user_id,)
        ).fetchall()
        for lang, device, blob in found:
            state = UserState.from_row(spec.user_id, lang, device, blob)
            newer = anchored(state, spec, message_id)
            if newer is not None:
                row = user_row(newer, now)
                conn.execute(UPSERT_USER, row)
                written = row[1:4]
        conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in row_ids])
        conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.OperationalError):  # COMMIT may have ended it already
            conn.execute("ROLLBACK")
        raise
    return None, written
