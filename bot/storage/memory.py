"""A Store in a dict, gone with the process: the terminal chat and tests."""

from __future__ import annotations

from collections.abc import Sequence

from bot.apple_status.report import Subscription
from bot.conversation.state import OutcomeRecord, UserState
from bot.insights.unmatched import UnmatchedQuery
from bot.storage.base import (
    Store,
    check_owner,
    device_column,
    queries_of,
    records_of,
    subscription_row,
    subscriptions_of,
)


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
        check_owner(state, records)
        # Build everything before changing anything, so a failure leaves the store untouched.
        row = (state.lang, device_column(state), state.to_json())
        lines = [
            (r.user_id, r.entry, r.device.value, r.fix, r.outcome.value, r.at) for r in records
        ]
        self._users[state.user_id] = row
        self._history.extend(lines)

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

    async def user_count(self) -> int:
        """Return how many users have a stored state."""
        return len(self._users)

    async def close(self) -> None:
        """Do nothing: there is nothing to release."""
