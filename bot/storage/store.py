"""Keep user states and their history: a small Store interface, SQLite and in-memory."""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from bot.apple_status.report import Subscription
from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.errors import BotError
from bot.insights.unmatched import UnmatchedKind, UnmatchedQuery

logger = logging.getLogger(__name__)

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
    # 4: users waiting to hear that Apple fixed an outage (bot/status.py); one per user.
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
)
# Every table stores something about a user in a `user_id` column, which is how forget() finds
# it, except these (tests/storage/test_store.py checks that every new table is one or the other).
USER_FREE_TABLES = frozenset({"schema_version"})

BUSY_TIMEOUT_MS = 5000
HISTORY_PAGE_USERS = 1000  # users whose history lines outcomes_by_user reads per query


class SchemaVersionError(BotError):
    """The database was written by a newer version of the bot than this one."""


class Store(abc.ABC):
    """Where user states and their history live between updates."""

    @abc.abstractmethod
    async def load(self, user_id: int) -> UserState:
        """Return the user's state, or a fresh one for an unknown user."""

    @abc.abstractmethod
    async def save(self, state: UserState, records: Sequence[OutcomeRecord] = ()) -> None:
        """Store the state and append the user's history lines, all or nothing."""

    @abc.abstractmethod
    async def history(self, user_id: int) -> list[OutcomeRecord]:
        """Return the user's history, oldest first."""

    @abc.abstractmethod
    async def outcomes_since(self, since: float) -> list[OutcomeRecord]:
        """Return every user's history lines at or after `since`, oldest first."""

    async def outcomes_by_user(self, since: float) -> AsyncIterator[list[OutcomeRecord]]:
        """Yield each user's history lines at or after `since` (oldest first), user by user.

        For going through a long history without holding all of it (learning the fix order):
        this default reads it at once; SqliteStore reads a page of users at a time.
        """
        by_user: dict[int, list[OutcomeRecord]] = {}
        for line in await self.outcomes_since(since):
            by_user.setdefault(line.user_id, []).append(line)
        for lines in by_user.values():
            yield lines

    @abc.abstractmethod
    async def record_unmatched(self, query: UnmatchedQuery) -> None:
        """Keep a question that matched nothing; the same user and time again sets its choice.

        The user's state must have been saved first (the question belongs to the user).
        """

    @abc.abstractmethod
    async def unmatched_since(self, since: float) -> list[UnmatchedQuery]:
        """Return every kept question asked at or after `since`, oldest first."""

    @abc.abstractmethod
    async def forget(self, user_id: int) -> None:
        """Delete everything stored about the user."""

    @abc.abstractmethod
    async def prune(self, older_than: float) -> int:
        """Delete history lines before `older_than`; return how many were deleted."""

    # Subscriptions to Apple's System Status (bot/status.py): one per user, the latest wins.

    @abc.abstractmethod
    async def subscribe(self, sub: Subscription) -> None:
        """Keep the user's subscription, replacing an older one (the user's state must exist)."""

    @abc.abstractmethod
    async def subscriptions(self) -> list[Subscription]:
        """Return every subscription, oldest first."""

    @abc.abstractmethod
    async def unsubscribe(self, sub: Subscription) -> bool:
        """Drop this subscription unless the user has made a newer one; return whether dropped."""

    # Posts in the support group (a person took over): which user each one is about.

    @abc.abstractmethod
    async def link_support_message(
        self, chat_id: int, message_id: int, user_id: int, at: float
    ) -> None:
        """Remember that this group post is about this user (the user's state must exist)."""

    @abc.abstractmethod
    async def support_user(self, chat_id: int, message_id: int) -> int | None:
        """Return the user a group post is about, or None for a post we do not know."""

    @abc.abstractmethod
    async def user_count(self) -> int:
        """Return how many users have a stored state."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the store; calling it twice is harmless."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _check_owner(state: UserState, records: Sequence[OutcomeRecord]) -> None:
    strangers = {r.user_id for r in records if r.user_id != state.user_id}
    if strangers:
        raise ValueError(f"history of users {sorted(strangers)} saved with user {state.user_id}")


def _device_column(state: UserState) -> str | None:
    return None if state.device is None else state.device.value


class SqliteStore(Store):
    """A Store in one SQLite file, through one aiosqlite connection.

    The file is in WAL mode with synchronous=NORMAL: a committed transaction has been written
    to the WAL before save() returns, so it survives the process being killed (kill -9) at any
    moment; only an OS crash or power loss may lose the last commits, which FULL would prevent
    at the cost of an fsync per tap. Every operation holds one lock, so the transactions of
    concurrent coroutines never interleave on the shared connection.
    """

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: str | Path, *, migrations: Sequence[Migration] = MIGRATIONS
    ) -> SqliteStore:
        """Open (creating if needed) the database at path and bring its schema up to date."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; each one is an explicit BEGIN/COMMIT.
        db = await aiosqlite.connect(path, isolation_level=None)
        store = cls(db, path)
        try:
            rows = await db.execute_fetchall("PRAGMA journal_mode=WAL")
            mode = next(iter(rows))[0]
            if mode != "wal":
                logger.warning("%s: journal_mode is %s, not wal", path, mode)
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA foreign_keys=ON")
            await store._migrate(migrations)
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
        async with self._lock:
            try:
                # IMMEDIATE takes the write lock up front, so a second process makes us wait
                # (busy_timeout) instead of failing halfway through.
                await self._db.execute("BEGIN IMMEDIATE")
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
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        # Only called with the lock held (inside a transaction).
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows))[0]

    async def load(self, user_id: int) -> UserState:
        """Return the user's state, or a fresh one for an unknown user."""
        rows = await self._rows(
            "SELECT lang, device, state FROM users WHERE user_id = ?", (user_id,)
        )
        if not rows:
            return UserState(user_id)
        lang, device, blob = rows[0]
        return UserState.from_row(user_id, lang, device, blob)

    async def save(self, state: UserState, records: Sequence[OutcomeRecord] = ()) -> None:
        """Store the state and append the user's history lines in one committed transaction."""
        _check_owner(state, records)
        async with self._transaction() as db:
            # An upsert, not INSERT OR REPLACE: replacing would delete the row and cascade.
            await db.execute(
                "INSERT INTO users (user_id, lang, device, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET lang = excluded.lang,"
                " device = excluded.device, state = excluded.state,"
                " updated_at = excluded.updated_at",
                (state.user_id, state.lang, _device_column(state), state.to_json(), time.time()),
            )
            if records:
                await db.executemany(
                    "INSERT INTO history (user_id, entry, device, fix, outcome, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (r.user_id, r.entry, r.device.value, r.fix, r.outcome.value, r.at)
                        for r in records
                    ],
                )

    async def history(self, user_id: int) -> list[OutcomeRecord]:
        """Return the user's history, oldest first."""
        rows = await self._rows(
            "SELECT user_id, entry, device, fix, outcome, at FROM history"
            " WHERE user_id = ? ORDER BY at, id",
            (user_id,),
        )
        return _records(rows)

    async def outcomes_since(self, since: float) -> list[OutcomeRecord]:
        """Return every user's history lines at or after `since`, oldest first."""
        rows = await self._rows(
            "SELECT user_id, entry, device, fix, outcome, at FROM history"
            " WHERE at >= ? ORDER BY at, id",
            (since,),
        )
        return _records(rows)

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
                "SELECT user_id, entry, device, fix, outcome, at FROM history"
                " WHERE at >= ? AND user_id BETWEEN ? AND ? ORDER BY user_id, at, id",
                (since, users[0][0], users[-1][0]),
            )
            by_user: dict[int, list[OutcomeRecord]] = {}
            for line in _records(rows):
                by_user.setdefault(line.user_id, []).append(line)
            for lines in by_user.values():
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
        return _queries(rows)

    async def forget(self, user_id: int) -> None:
        """Delete everything stored about the user: their rows in every table with a user_id."""
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

    async def prune(self, older_than: float) -> int:
        """Delete history lines before `older_than`; return how many were deleted."""
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM history WHERE at < ?", (older_than,))
            # Kept questions are the users' own words: they go with the history (not counted).
            await db.execute("DELETE FROM unmatched WHERE at < ?", (older_than,))
            # Links of old support posts go too: a reply to such a post is then ignored.
            await db.execute("DELETE FROM support_messages WHERE at < ?", (older_than,))
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
                _subscription_row(sub),
            )

    async def subscriptions(self) -> list[Subscription]:
        """Return every subscription, oldest first."""
        rows = await self._rows(
            "SELECT user_id, chat_id, lang, entry, device, services, created_at"
            " FROM status_subscriptions ORDER BY created_at, user_id"
        )
        return _subscriptions(rows)

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
        async with self._lock:
            await self._db.close()


def _records(rows: Iterable[sqlite3.Row | tuple[Any, ...]]) -> list[OutcomeRecord]:
    records = []
    for user_id, entry, device, fix, outcome, at in rows:
        try:
            records.append(OutcomeRecord(user_id, entry, Device(device), fix, Outcome(outcome), at))
        except ValueError:
            # A device or outcome this version no longer knows: skip it, do not fail the caller.
            logger.warning("user %s: skipping history line %s/%s", user_id, device, outcome)
    return records


def _queries(rows: Iterable[sqlite3.Row | tuple[Any, ...]]) -> list[UnmatchedQuery]:
    queries = []
    for user_id, text, kind, choice, at in rows:
        try:
            queries.append(UnmatchedQuery(user_id, text, UnmatchedKind(kind), choice, at))
        except ValueError:
            logger.warning("user %s: skipping unmatched question of kind %s", user_id, kind)
    return queries


def _subscription_row(sub: Subscription) -> tuple[int, int, str, str, str, str, float]:
    services = json.dumps(list(sub.services), ensure_ascii=False)
    device = sub.device.value
    return (sub.user_id, sub.chat_id, sub.lang, sub.entry, device, services, sub.created_at)


def _subscriptions(rows: Iterable[sqlite3.Row | tuple[Any, ...]]) -> list[Subscription]:
    subs = []
    for user_id, chat_id, lang, entry, device, services, created_at in rows:
        try:
            names = json.loads(services)
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(services)
            subs.append(
                Subscription(
                    user_id, chat_id, lang, entry, Device(device), tuple(names), created_at
                )
            )
        except ValueError:
            # A device this version no longer knows, or a damaged row: skip it, do not fail.
            logger.warning("user %s: skipping unreadable status subscription", user_id)
    return subs


class MemoryStore(Store):
    """A Store in a dict, gone with the process; rows round-trip like SqliteStore's."""

    def __init__(self) -> None:
        self._users: dict[int, tuple[str | None, str | None, str]] = {}
        self._history: list[tuple[int, str, str, str | None, str, float]] = []
        self._subscriptions: dict[int, tuple[int, int, str, str, str, str, float]] = {}
        self._unmatched: dict[tuple[int, float], tuple[int, str, str, str | None, float]] = {}
        self._support: dict[tuple[int, int], tuple[int, float]] = {}  # post -> (user, at)

    async def load(self, user_id: int) -> UserState:
        """Return the user's state, or a fresh one for an unknown user."""
        row = self._users.get(user_id)
        return UserState(user_id) if row is None else UserState.from_row(user_id, *row)

    async def save(self, state: UserState, records: Sequence[OutcomeRecord] = ()) -> None:
        """Store the state and append the user's history lines, all or nothing."""
        _check_owner(state, records)
        # Build everything before changing anything, so a failure leaves the store untouched.
        row = (state.lang, _device_column(state), state.to_json())
        lines = [
            (r.user_id, r.entry, r.device.value, r.fix, r.outcome.value, r.at) for r in records
        ]
        self._users[state.user_id] = row
        self._history.extend(lines)

    async def history(self, user_id: int) -> list[OutcomeRecord]:
        """Return the user's history, oldest first."""
        return _records(
            sorted((h for h in self._history if h[0] == user_id), key=lambda line: line[5])
        )

    async def outcomes_since(self, since: float) -> list[OutcomeRecord]:
        """Return every user's history lines at or after `since`, oldest first."""
        return _records(
            sorted((h for h in self._history if h[5] >= since), key=lambda line: line[5])
        )

    async def record_unmatched(self, query: UnmatchedQuery) -> None:
        """Keep a question that matched nothing; the same user and time again sets its choice."""
        key = (query.user_id, query.at)
        old = self._unmatched.get(key)
        text, kind = (old[1], old[2]) if old else (query.text, query.kind.value)
        self._unmatched[key] = (query.user_id, text, kind, query.choice, query.at)

    async def unmatched_since(self, since: float) -> list[UnmatchedQuery]:
        """Return every kept question asked at or after `since`, oldest first."""
        rows = sorted((q for q in self._unmatched.values() if q[4] >= since), key=lambda q: q[4])
        return _queries(rows)

    async def forget(self, user_id: int) -> None:
        """Delete everything stored about the user."""
        self._users.pop(user_id, None)
        self._history = [h for h in self._history if h[0] != user_id]
        self._subscriptions.pop(user_id, None)
        self._unmatched = {k: q for k, q in self._unmatched.items() if k[0] != user_id}
        self._support = {k: v for k, v in self._support.items() if v[0] != user_id}

    async def prune(self, older_than: float) -> int:
        """Delete history lines before `older_than`; return how many were deleted."""
        kept = [h for h in self._history if h[5] >= older_than]
        deleted = len(self._history) - len(kept)
        self._history = kept
        # Kept questions are the users' own words: they go with the history (not counted).
        self._unmatched = {k: q for k, q in self._unmatched.items() if q[4] >= older_than}
        self._support = {k: v for k, v in self._support.items() if v[1] >= older_than}
        return deleted

    async def subscribe(self, sub: Subscription) -> None:
        """Keep the user's subscription, replacing an older one (the user's state must exist)."""
        self._subscriptions[sub.user_id] = _subscription_row(sub)

    async def subscriptions(self) -> list[Subscription]:
        """Return every subscription, oldest first."""
        return _subscriptions(sorted(self._subscriptions.values(), key=lambda r: (r[6], r[0])))

    async def unsubscribe(self, sub: Subscription) -> bool:
        """Drop this subscription unless the user has made a newer one; return whether dropped."""
        row = self._subscriptions.get(sub.user_id)
        if row is None or row[6] != sub.created_at:
            return False
        del self._subscriptions[sub.user_id]
        return True

    async def link_support_message(
        self, chat_id: int, message_id: int, user_id: int, at: float
    ) -> None:
        """Remember that this group post is about this user (the user's state must exist)."""
        self._support[(chat_id, message_id)] = (user_id, at)

    async def support_user(self, chat_id: int, message_id: int) -> int | None:
        """Return the user a group post is about, or None for a post we do not know."""
        link = self._support.get((chat_id, message_id))
        return None if link is None else link[0]

    async def user_count(self) -> int:
        """Return how many users have a stored state."""
        return len(self._users)

    async def close(self) -> None:
        """Do nothing: there is nothing to release."""
