"""A Store in one SQLite file (aiosqlite): WAL, schema migrations, one transaction per save."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, closing, suppress
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.apple_status.report import Subscription
from bot.conversation.state import OutcomeRecord
from bot.insights.unmatched import UnmatchedQuery
from bot.storage.base import (
    SELECT_HISTORY,
    SchemaVersionError,
    StorageError,
    Store,
    per_user,
    queries_of,
    records_of,
    subscription_row,
    subscriptions_of,
)
from bot.storage.queues import PROCESSED_KEEP_SECONDS
from bot.storage.sqlite_gate import ConnectionGate
from bot.storage.sqlite_queues import SqliteQueues
from bot.storage.sqlite_states import SqliteStates, StateRows

logger = logging.getLogger(__name__)


T = TypeVar("T")

# One migration is the statements that take the schema from version N-1 to N, applied in one
# transaction together with its schema_version row. Append new ones; never edit a released one.
Migration = tuple[str, ...]

MIGRATIONS: tuple[Migration, ...] = (
    # 1: users and their history.
    (
        """CREATE TABLE users (
            user_id INTEGER PRIMARY KEY,
            lang TEXT,
            device TEXT,
            state TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
        # ON DELETE CASCADE: forgetting a user also clears every table that references users.
        """CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            entry TEXT NOT NULL,
            device TEXT NOT NULL,
            fix TEXT,
            outcome TEXT NOT NULL,
            at REAL NOT NULL
        )""",
    ),
    # 2: per-user lookups and statistics by time; a step of its own so that upgrading an
    # existing database is exercised from the first release on.
    (
        "CREATE INDEX history_user_id ON history (user_id)",
        "CREATE INDEX history_at ON history (at)",
    ),
    # 3: questions that matched nothing and what the user picked next (bot/unmatched.py);
    # (user_id, at) identifies a question when its choice arrives.
    (
        """CREATE TABLE unmatched (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            kind TEXT NOT NULL,
            choice TEXT,
            at REAL NOT NULL,
            UNIQUE (user_id, at)
        )""",
        "CREATE INDEX unmatched_at ON unmatched (at)",
    ),
    # 4: users waiting to hear that Apple fixed an outage (bot/apple_status/); one per user.
    (
        """CREATE TABLE status_subscriptions (
            user_id INTEGER PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
            chat_id INTEGER NOT NULL,
            lang TEXT NOT NULL,
            entry TEXT NOT NULL,
            device TEXT NOT NULL,
            services TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
    ),
    # 5: which posts in the support group belong to which user (a person took over), so that
    # an operator's reply to any of them reaches that user, also after a restart.
    (
        """CREATE TABLE support_messages (
            chat_id INTEGER NOT NULL,
            message_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            at REAL NOT NULL,
            PRIMARY KEY (chat_id, message_id)
        )""",
        "CREATE INDEX support_messages_user_id ON support_messages (user_id)",
        "CREATE INDEX support_messages_at ON support_messages (at)",
    ),
    # 6: the inbox (updates kept before Telegram hears they arrived; a handled one keeps only
    # its id and time, so that it is not handled twice) and the outbox (bot/storage/queues.py).
    (
        """CREATE TABLE inbox (
            update_id INTEGER PRIMARY KEY,
            payload TEXT,
            received_at REAL NOT NULL,
            done_at REAL
        )""",
        "CREATE INDEX inbox_pending ON inbox (update_id) WHERE done_at IS NULL",
        "CREATE INDEX inbox_done_at ON inbox (done_at)",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            message TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
    ),
    # 7: whose update and which chat's message, so that several instances sharing one
    # database (PostgreSQL, the same step there) take a user's updates and a chat's messages
    # in order; filled in from now on (older rows are read by everyone, as before).
    (
        "ALTER TABLE inbox ADD COLUMN user_key INTEGER",
        "CREATE INDEX inbox_user_pending ON inbox (user_key, update_id) WHERE done_at IS NULL",
        "ALTER TABLE outbox ADD COLUMN chat_id INTEGER",
        "CREATE INDEX outbox_chat ON outbox (chat_id, id)",
    ),
)
BUSY_TIMEOUT_MS = 5000  # SQLite's own wait for a lock held elsewhere, per attempt
LOCK_WAIT_SECONDS = 120.0  # then a transaction stops retrying and fails
# Rewrites a row as it is: a real write, which a read-only file or folder refuses.
_WRITE_PROBE = (
    "UPDATE schema_version SET applied_at = applied_at"
    " WHERE version = (SELECT max(version) FROM schema_version)"
)
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
HISTORY_PAGE_USERS = 1000  # users whose history lines outcomes_by_user reads per query


async def _one_trip(db: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run fn(connection, *args) in aiosqlite's thread: one round trip (see _save_turn
    in sqlite_states.py)."""
    # aiosqlite's own queueing primitive (the same from 0.17 to 0.22): it has no public way
    # to run several statements in one trip. Called through the store's gate.
    result: T = await db._execute(fn, db._conn, *args)  # type: ignore[no-untyped-call]
    return result


class SqliteStore(SqliteStates, SqliteQueues, Store):
    """A Store in one SQLite file, through one aiosqlite connection.

    The file is in WAL mode with synchronous=NORMAL: a committed transaction has been written
    to the WAL before save() returns, so it survives the process being killed (kill -9) at any
    moment; only an OS crash or power loss may lose the last commits, which FULL would prevent
    at the cost of an fsync per tap. A gate (sqlite_gate.py) keeps the transactions of
    concurrent coroutines from interleaving on the shared connection. The users' rows it wrote
    last are kept in memory, write-through, and loaded from there (sqlite_states.py): one
    process owns a SQLite file.
    """

    def __init__(
        self, db: aiosqlite.Connection, path: Path, lock_wait: float = LOCK_WAIT_SECONDS
    ) -> None:
        self._db = db
        self._path = path
        self._gate = ConnectionGate()
        self._lock_wait = lock_wait
        self._states = StateRows()

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        lock_wait: float = LOCK_WAIT_SECONDS,
        require_write: bool = True,
    ) -> SqliteStore:
        """Open (creating if needed) the database at path and bring its schema up to date.

        Raises StorageError, with a one-line reason, for a database the bot cannot use: a file
        that is not SQLite or is damaged, a newer schema, or (with `require_write`) a file or
        folder it cannot write to, which would otherwise fail every update later.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A file SQLite cannot open fails here, plainly: aiosqlite would leave its thread
            # reporting to an event loop that may be gone by then.
            await asyncio.to_thread(_can_open, path)
            # isolation_level=None: no implicit transactions; each is an explicit BEGIN/COMMIT.
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise _unusable(path, exc) from exc
        store = cls(db, path, lock_wait)
        try:
            await _configure(db, path, busy_timeout_ms)
            await store._migrate(migrations)
            if require_write:  # a read-only file or folder fails here, not on every update
                async with store._transaction() as writable:
                    await writable.execute(_WRITE_PROBE)
        except sqlite3.Error as exc:
            await store.close()
            raise _unusable(path, exc) from exc
        except BaseException:
            await store.close()
            raise
        return store

    async def _migrate(self, migrations: Sequence[Migration]) -> None:
        while True:
            # Re-read the version inside each transaction: another process may migrate too.
            async with self._transaction() as db:
                await db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    "version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
                )
                version = await self._scalar("SELECT coalesce(max(version), 0) FROM schema_version")
                if version > len(migrations):
                    raise SchemaVersionError(
                        f"{self._path} has schema version {version}, but this bot knows only "
                        f"up to {len(migrations)}: run a newer bot or use another database"
                    )
                if version == len(migrations):
                    return
                for statement in migrations[version]:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version + 1, time.time()),
                )
            logger.info("%s: migrated to schema version %d", self._path, version + 1)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._gate.transaction():
            # IMMEDIATE takes the write lock up front, so a second process makes us wait
            # (busy_timeout, then retries) instead of failing halfway through.
            await _retry_busy(
                lambda: self._db.execute("BEGIN IMMEDIATE"), self._lock_wait, self._path
            )
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                # Also on cancellation: the queued BEGIN or COMMIT still runs in aiosqlite's
                # thread, so roll back after it; if COMMIT already ended it, there is nothing
                # left to roll back.
                with suppress(sqlite3.OperationalError):
                    await self._db.execute("ROLLBACK")
                raise

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one statement (a transaction by itself) and return its rows."""
        rows = await _retry_busy(
            lambda: self._gate.call(lambda: self._db.execute_fetchall(sql, params)),
            self._lock_wait,
            self._path,
        )
        return list(rows)

    async def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        # Only called inside a transaction.
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows))[0]

    async def _in_one_trip(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) in aiosqlite's thread, through the gate, when not busy."""
        return await _retry_busy(
            lambda: self._gate.call(lambda: _one_trip(self._db, fn, *args)),
            self._lock_wait,
            self._path,
        )

    async def history(self, user_id: int) -> list[OutcomeRecord]:
        """Return the user's history, oldest first."""
        rows = await self._rows(
            SELECT_HISTORY + " WHERE user_id = ? ORDER BY at, id",
            (user_id,),
        )
        return records_of(rows)

    async def outcomes_since(self, since: float) -> list[OutcomeRecord]:
        """Return every user's history lines at or after `since`, oldest first."""
        rows = await self._rows(
            SELECT_HISTORY + " WHERE at >= ? ORDER BY at, id",
            (since,),
        )
        return records_of(rows)

    async def outcomes_by_user(self, since: float) -> AsyncIterator[list[OutcomeRecord]]:
        """Yield each user's history lines at or after `since`, a page of users per query.

        Reading 500,000 lines at once took 2.6 s and 240 MB (benchmarks/bench_footprint.py);
        a page holds HISTORY_PAGE_USERS users, and other queries run between pages.
        """
        after: int | None = None
        while True:  # one page of users per pass; ends with the first short page
            later = "" if after is None else " AND user_id > ?"
            users = await self._rows(
                f"SELECT DISTINCT user_id FROM history WHERE at >= ?{later}"
                f" ORDER BY user_id LIMIT {HISTORY_PAGE_USERS}",
                (since,) if after is None else (since, after),
            )
            if not users:
                return
            rows = await self._rows(
                SELECT_HISTORY
                + " WHERE at >= ? AND user_id BETWEEN ? AND ? ORDER BY user_id, at, id",
                (since, users[0][0], users[-1][0]),
            )
            for lines in per_user(records_of(rows)):
                yield lines
            if len(users) < HISTORY_PAGE_USERS:
                return
            after = users[-1][0]

    async def record_unmatched(self, query: UnmatchedQuery) -> None:
        """Keep a question that matched nothing; the same user and time again sets its choice."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO unmatched (user_id, text, kind, choice, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, at) DO UPDATE SET choice = excluded.choice",
                (query.user_id, query.text, query.kind.value, query.choice, query.at),
            )

    async def unmatched_since(self, since: float) -> list[UnmatchedQuery]:
        """Return every kept question asked at or after `since`, oldest first."""
        rows = await self._rows(
            "SELECT user_id, text, kind, choice, at FROM unmatched WHERE at >= ? ORDER BY at, id",
            (since,),
        )
        return queries_of(rows)

    async def prune(self, older_than: float) -> int:
        """Delete history lines before `older_than`; return how many were deleted."""
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM history WHERE at < ?", (older_than,))
            # Kept questions are the users' own words: they go with the history (not counted).
            await db.execute("DELETE FROM unmatched WHERE at < ?", (older_than,))
            # Links of old support posts go too: a reply to such a post is then ignored.
            await db.execute("DELETE FROM support_messages WHERE at < ?", (older_than,))
            processed = max(older_than, time.time() - PROCESSED_KEEP_SECONDS)
            await db.execute("DELETE FROM inbox WHERE done_at < ?", (processed,))
            return cursor.rowcount

    async def subscribe(self, sub: Subscription) -> None:
        """Keep the user's subscription, replacing an older one (the user's state must exist)."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO status_subscriptions"
                " (user_id, chat_id, lang, entry, device, services, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET chat_id = excluded.chat_id,"
                " lang = excluded.lang, entry = excluded.entry, device = excluded.device,"
                " services = excluded.services, created_at = excluded.created_at",
                subscription_row(sub),
            )

    async def subscriptions(self) -> list[Subscription]:
        """Return every subscription, oldest first."""
        rows = await self._rows(
            "SELECT user_id, chat_id, lang, entry, device, services, created_at"
            " FROM status_subscriptions ORDER BY created_at, user_id"
        )
        return subscriptions_of(rows)

    async def unsubscribe(self, sub: Subscription) -> bool:
        """Drop this subscription unless the user has made a newer one; return whether dropped."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "DELETE FROM status_subscriptions WHERE user_id = ? AND created_at = ?",
                (sub.user_id, sub.created_at),
            )
            return cursor.rowcount > 0

    async def link_support_message(
        self, chat_id: int, message_id: int, user_id: int, at: float
    ) -> None:
        """Remember that this group post is about this user (the user's state must exist)."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO support_messages (chat_id, message_id, user_id, at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (chat_id, message_id)"
                " DO UPDATE SET user_id = excluded.user_id, at = excluded.at",
                (chat_id, message_id, user_id, at),
            )

    async def support_user(self, chat_id: int, message_id: int) -> int | None:
        """Return the user a group post is about, or None for a post we do not know."""
        rows = await self._rows(
            "SELECT user_id FROM support_messages WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id),
        )
        return int(rows[0][0]) if rows else None

    async def user_count(self) -> int:
        """Return how many users have a stored state."""
        rows = await self._rows("SELECT count(*) FROM users")
        return int(rows[0][0])

    async def close(self) -> None:
        """Close the connection after the queued operations; calling it twice is harmless."""
        async with self._gate.transaction():
            await self._db.close()


def _can_open(path: Path) -> None:
    """Open and close the file with sqlite3, raising what SQLite says if it cannot."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA schema_version").fetchall()


async def _configure(db: aiosqlite.Connection, path: Path, busy_timeout_ms: int) -> None:
    """Set the connection up: busy timeout, WAL, synchronous=NORMAL, foreign keys."""
    # The busy timeout first: even switching to WAL waits for another process's lock.
    await db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    rows = await db.execute_fetchall("PRAGMA journal_mode=WAL")
    mode = next(iter(rows))[0]
    if mode != "wal":
        logger.warning("%s: journal_mode is %s, not wal", path, mode)
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA foreign_keys=ON")


async def _retry_busy(attempt: Callable[[], Awaitable[T]], lock_wait: float, path: Path) -> T:
    """Run an attempt again while another process holds the lock, up to `lock_wait` s.

    Each attempt already waits busy_timeout inside SQLite; this outer loop makes a lock held
    longer (a backup, a long script) a delay instead of a lost update.
    """
    deadline = time.monotonic() + lock_wait
    pause = 0.05
    while True:
        try:
            return await attempt()
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() + pause > deadline:
                raise
            logger.warning("%s is locked by another connection; retrying", path)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


def _busy(exc: sqlite3.Error) -> bool:
    """Tell whether an error only means that another connection holds a lock."""
    return getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES or "locked" in str(exc)


def _unusable(path: Path, exc: BaseException) -> StorageError:
    """Explain in one line why the database at path cannot be used."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_NOTADB:
        reason = "is not a SQLite database (damaged, or another kind of file)"
    elif code == sqlite3.SQLITE_CORRUPT:
        reason = "is damaged (SQLite: database disk image is malformed); restore a backup"
    elif code is not None and code & 0xFF == sqlite3.SQLITE_READONLY:
        reason = "cannot be written: make the file and its folder writable by the bot"
    elif code is not None and code & 0xFF == sqlite3.SQLITE_CANTOPEN:
        reason = "cannot be opened: make sure its folder exists and the bot may write there"
    elif _busy(exc) if isinstance(exc, sqlite3.Error) else False:
        reason = "stayed locked by another process while opening; try again"
    elif isinstance(exc, OSError):
        reason = f"cannot be created: {exc.strerror or exc}"
    else:
        reason = f"cannot be used: {exc}"
    return StorageError(f"database {path} {reason}".replace("\n", " "))
