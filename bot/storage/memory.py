"""A Store in a dict, gone with the process: the terminal chat and tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

from bot.apple_status.report import Subscription
from bot.conversation.state import OutcomeRecord, UserState
from bot.insights.unmatched import UnmatchedQuery
from bot.storage.base import (
    Store,
    anchored,
    check_owner,
    device_column,
    queries_of,
    records_of,
    subscription_row,
    subscriptions_of,
)
from bot.storage.queues import PROCESSED_KEEP_SECONDS, Anchor, InboxUpdate, OutboxRow, Outgoing


class MemoryStore(Store):
    """A Store in a dict, gone with the process; rows round-trip like SqliteStore's."""

    def __init__(self) -> None:
        self._users: dict[int, tuple[str | None, str | None, str]] = {}
        self._history: list[tuple[int, str, str, str | None, str, float]] = []
        self._subscriptions: dict[int, tuple[int, int, str, str, str, str, float]] = {}
        self._unmatched: dict[tuple[int, float], tuple[int, str, str, str | None, float]] = {}
        self._support: dict[tuple[int, int], tuple[int, float]] = {}  # post -> (user, at)
        self._inbox: dict[int, InboxUpdate] = {}  # not handled yet
        self._processed: dict[int, float] = {}  # update_id -> when it was handled
        self._outbox: dict[int, tuple[str, float]] = {}  # row id -> (message JSON, created)
        self._row_ids = itertools.count(1)

    async def load(self, user_id: int) -> UserState:
        """Return the user's state, or a fresh one for an unknown user."""
        row = self._users.get(user_id)
        return UserState(user_id) if row is None else UserState.from_row(user_id, *row)

    async def save(
        self,
        state: UserState,
        records: Sequence[OutcomeRecord] = (),
        *,
        outgoing: Sequence[Outgoing] = (),
        update_id: int | None = None,
    ) -> list[OutboxRow]:
        """Store the state, the history lines and what to send, all or nothing."""
        check_owner(state, records)
        # Build everything before changing anything, so a failure leaves the store untouched.
        row = (state.lang, device_column(state), state.to_json())
        lines = [
            (r.user_id, r.entry, r.device.value, r.fix, r.outcome.value, r.at) for r in records
        ]
        blobs = [m.to_json() for m in outgoing]
        self._users[state.user_id] = row
        self._history.extend(lines)
        if update_id is not None:
            await self.inbox_done(update_id)
        return self._enqueue(outgoing, blobs)

    def _enqueue(self, messages: Sequence[Outgoing], blobs: Sequence[str]) -> list[OutboxRow]:
        now = time.time()
        rows = []
        for message, blob in zip(messages, blobs, strict=True):
            row_id = next(self._row_ids)
            self._outbox[row_id] = (blob, now)
            rows.append(OutboxRow(row_id, message, now))
        return rows

    async def history(self, user_id: int) -> list[OutcomeRecord]:
        """Return the user's history, oldest first."""
        return records_of(
            sorted((h for h in self._history if h[0] == user_id), key=lambda line: line[5])
        )

    async def outcomes_since(self, since: float) -> list[OutcomeRecord]:
        """Return every user's history lines at or after `since`, oldest first."""
        return records_of(
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
        return queries_of(rows)

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
        cutoff = max(older_than, time.time() - PROCESSED_KEEP_SECONDS)
        self._processed = {k: at for k, at in self._processed.items() if at >= cutoff}
        return deleted

    async def subscribe(self, sub: Subscription) -> None:
        """Keep the user's subscription, replacing an older one (the user's state must exist)."""
        self._subscriptions[sub.user_id] = subscription_row(sub)

    async def subscriptions(self) -> list[Subscription]:
        """Return every subscription, oldest first."""
        return subscriptions_of(sorted(self._subscriptions.values(), key=lambda r: (r[6], r[0])))

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

    async def inbox_add(self, updates: Sequence[InboxUpdate]) -> list[int]:
        """Keep the updates not seen before; return their ids in the given order."""
        fresh = []
        for update in updates:
            uid = update.update_id
            if uid in self._inbox or uid in self._processed:
                continue
            self._inbox[uid] = update
            fresh.append(uid)
        return fresh

    async def inbox_pending(self, user_key: int | None = None) -> list[InboxUpdate]:
        """Return the kept updates not handled yet (of one user_key, if given), oldest first."""
        pending = [self._inbox[uid] for uid in sorted(self._inbox)]
        return [u for u in pending if user_key is None or u.user_key == user_key]

    async def inbox_done(self, update_id: int) -> None:
        """Mark an update handled without a turn to save; only its id and time are kept."""
        self._inbox.pop(update_id, None)
        self._processed.setdefault(update_id, time.time())

    async def enqueue(self, messages: Sequence[Outgoing]) -> list[OutboxRow]:
        """Put messages decided outside a turn in the outbox; return their rows."""
        return self._enqueue(messages, [m.to_json() for m in messages])

    async def outbox_pending(self, chat_id: int | None = None) -> list[OutboxRow]:
        """Return the messages not delivered yet (to one chat, if given), in decided order."""
        rows = []
        for row_id in sorted(self._outbox):
            blob, created = self._outbox[row_id]
            row = OutboxRow(row_id, Outgoing.from_json(blob), created)
            if chat_id is None or row.message.chat_id == chat_id:
                rows.append(row)
        return rows

    async def outbox_done(
        self, row_ids: Sequence[int], anchor: tuple[Anchor, int] | None = None
    ) -> None:
        """Delete delivered or refused messages; record a walk's new message id with them."""
        if anchor is not None:
            spec, message_id = anchor
            state = anchored(await self.load(spec.user_id), spec, message_id)
            if state is not None and spec.user_id in self._users:
                await self.save(state)
        for row_id in row_ids:
            self._outbox.pop(row_id, None)

    async def user_count(self) -> int:
        """Return how many users have a stored state."""
        return len(self._users)

    async def close(self) -> None:
        """Do nothing: there is nothing to release."""
