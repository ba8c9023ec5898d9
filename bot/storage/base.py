"""The Store contract: where user states and their history live between updates.

Every backend (memory.py, sqlite.py) passes the one contract suite in
tests/storage/test_contract.py. The `user_id` rule: every table keeps what it stores about a
user in a `user_id` column (that is how forget() finds it), except USER_FREE_TABLES.
"""

from __future__ import annotations

import abc
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any, Protocol, Self

from bot.apple_status.report import Subscription
from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.errors import BotError
from bot.insights.unmatched import UnmatchedKind, UnmatchedQuery
from bot.storage.queues import Anchor, InboxUpdate, OutboxRow, Outgoing

logger = logging.getLogger(__name__)

# Every table stores something about a user in a `user_id` column, which is how forget() finds
# it, except these (tests/storage/test_sqlite.py checks that every new table is one or the other).
# The inbox and the outbox hold an update or a message only until it is handled or delivered
# (seconds), and /forget must not drop the user's updates that come after it.
USER_FREE_TABLES = frozenset({"schema_version", "inbox", "outbox"})


class StorageError(BotError):
    """The database cannot be used (unwritable, corrupt, unknown kind); the message says why."""


class SchemaVersionError(StorageError):
    """The database was written by a newer version of the bot than this one."""


class Lead(Protocol):
    """Whether this instance runs a periodic job now (PostgresStore.leader)."""

    async def held(self) -> bool:
        """Return whether this instance leads now, taking the lead if nobody has it."""
        ...

    async def close(self) -> None:
        """Give up the lead."""
        ...


class Store(abc.ABC):
    """Where user states and their history live between updates."""

    @abc.abstractmethod
    async def load(self, user_id: int) -> UserState:
        """Return the user's state, or a fresh one for an unknown user."""

    @abc.abstractmethod
    async def save(
        self,
        state: UserState,
        records: Sequence[OutcomeRecord] = (),
        *,
        outgoing: Sequence[Outgoing] = (),
        update_id: int | None = None,
    ) -> list[OutboxRow]:
        """Store the state, the history lines and what to send, all or nothing.

        `update_id`: the inbox update this turn handled, marked done in the same transaction.
        Return the outbox rows of `outgoing`, for the sender.
        """

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
        for lines in per_user(await self.outcomes_since(since)):
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
        """Delete history lines before `older_than`; return how many were deleted.

        Records of processed updates go too once PROCESSED_KEEP_SECONDS old (or before
        `older_than`, if that is later).
        """

    # Subscriptions to Apple's System Status (bot/apple_status/): one per user, the latest wins.

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

    # The inbox (bot/storage/queues.py): updates kept before their sender hears they arrived.

    @abc.abstractmethod
    async def inbox_add(self, updates: Sequence[InboxUpdate]) -> list[int]:
        """Keep the updates not seen before, all or nothing; return their ids in the given order."""

    @abc.abstractmethod
    async def inbox_pending(self, user_key: int | None = None) -> list[InboxUpdate]:
        """Return the kept updates not handled yet (of one user_key, if given), oldest first."""

    @abc.abstractmethod
    async def inbox_done(self, update_id: int) -> None:
        """Mark an update handled without a turn to save; only its id and time are kept."""

    # The outbox: what turns decided to send, until it is delivered or refused for good.

    @abc.abstractmethod
    async def enqueue(self, messages: Sequence[Outgoing]) -> list[OutboxRow]:
        """Put messages decided outside a turn in the outbox; return their rows."""

    @abc.abstractmethod
    async def outbox_pending(self, chat_id: int | None = None) -> list[OutboxRow]:
        """Return the messages not delivered yet (to one chat, if given), in decided order."""

    @abc.abstractmethod
    async def outbox_done(
        self, row_ids: Sequence[int], anchor: tuple[Anchor, int] | None = None
    ) -> None:
        """Delete delivered or refused messages; record a walk's new message id with them."""

    # Several instances on one database (PostgresStore): one user's updates at a time.

    shared: bool = False  # True: other processes use the same inbox and outbox

    @asynccontextmanager
    async def job_lock(self, name: str) -> AsyncIterator[None]:
        """Hold a job's lock across processes (one process alone needs none)."""
        yield

    def leader(self, name: str) -> Lead | None:
        """Return the lead of a periodic job among instances; None: this process is alone."""
        return None

    async def ping(self) -> None:
        """Raise unless the database answers (GET /healthz)."""
        await self.user_count()

    @asynccontextmanager
    async def user_lock(self, user_id: int) -> AsyncIterator[None]:
        """Hold the user's lock across processes (one process alone needs none: UserLocks)."""
        yield

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


# PostgreSQL's SQLSTATE classes of a database that failed rather than a statement that is wrong:
# connection exception, transaction rollback (deadlock, serialization), insufficient resources
# (disk full), operator intervention (shutdown, starting up), system error (I/O).
_PG_FAILURE_CLASSES = frozenset({"08", "40", "53", "57", "58"})


def is_storage_failure(exc: BaseException) -> bool:
    """Return True if the database failed (full, read-only, I/O error, locked): worth a retry."""
    if isinstance(exc, StorageError | sqlite3.OperationalError):
        return True
    # asyncpg is imported only with PostgreSQL: recognised by its exceptions' names and codes.
    if not type(exc).__module__.startswith("asyncpg"):
        return isinstance(exc, ConnectionError | TimeoutError) and _pg_in_use()
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _PG_FAILURE_CLASSES
    # The client's view of a broken connection (closed, or in a state it cannot leave).
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"InterfaceError", "InternalClientError"})


def _pg_in_use() -> bool:
    """Return True once asyncpg is loaded (a lost connection to PostgreSQL is an OSError)."""
    import sys

    return "asyncpg" in sys.modules


def anchored(state: UserState, anchor: Anchor, message_id: int) -> UserState | None:
    """Return the state with the walk's message id set, None if a later turn moved on."""
    walk = state.walk
    if walk is None or walk.started_at != anchor.started_at or walk.message_id != anchor.expected:
        return None
    if walk.message_id == message_id:
        return None
    return state.with_(walk=replace(walk, message_id=message_id))


def check_owner(state: UserState, records: Sequence[OutcomeRecord]) -> None:
    strangers = {r.user_id for r in records if r.user_id != state.user_id}
    if strangers:
        raise ValueError(f"history of users {sorted(strangers)} saved with user {state.user_id}")


def device_column(state: UserState) -> str | None:
    return None if state.device is None else state.device.value


def per_user(records: Iterable[OutcomeRecord]) -> list[list[OutcomeRecord]]:
    """Group history lines by user, users in order of first appearance, lines in order."""
    by_user: dict[int, list[OutcomeRecord]] = {}
    for line in records:
        by_user.setdefault(line.user_id, []).append(line)
    return list(by_user.values())


# The columns records_of reads, in its order; each store adds its WHERE and ORDER BY.
SELECT_HISTORY = "SELECT user_id, entry, device, fix, outcome, at FROM history"


def records_of(rows: Iterable[Any]) -> list[OutcomeRecord]:
    records = []
    for user_id, entry, device, fix, outcome, at in rows:
        try:
            records.append(OutcomeRecord(user_id, entry, Device(device), fix, Outcome(outcome), at))
        except ValueError:
            # A device or outcome this version no longer knows: skip it, do not fail the caller.
            logger.warning("user %s: skipping history line %s/%s", user_id, device, outcome)
    return records


def queries_of(rows: Iterable[Any]) -> list[UnmatchedQuery]:
    queries = []
    for user_id, text, kind, choice, at in rows:
        try:
            queries.append(UnmatchedQuery(user_id, text, UnmatchedKind(kind), choice, at))
        except ValueError:
            logger.warning("user %s: skipping unmatched question of kind %s", user_id, kind)
    return queries


def subscription_row(sub: Subscription) -> tuple[int, int, str, str, str, str, float]:
    services = json.dumps(list(sub.services), ensure_ascii=False)
    device = sub.device.value
    return (sub.user_id, sub.chat_id, sub.lang, sub.entry, device, services, sub.created_at)


def subscriptions_of(rows: Iterable[Any]) -> list[Subscription]:
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
