"""The outbox sender for several instances on one database: a chat's messages under its lock.

Outbox (outbox.py) keeps each chat's waiting messages in its own memory, which is right for one
process. With several, the next update of a chat may be handled by another instance while a
message of the chat waits here for a retry, and a message may be left by an instance that died.
So here a chat's messages are delivered only while holding the chat's lock (the user's, across
instances: PostgresStore.user_lock), read from the database in the order they were decided,
and deleted before the lock is let go: whoever holds the lock sends what is waiting, oldest
first, and nobody sends a message another instance has delivered. The lock is the
`FOR UPDATE SKIP LOCKED` of this queue, per chat rather than per row, because a chat's order
matters and a row lock would let a later message pass an earlier one that is being retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.channels.base import DeliveryError
from bot.channels.outbox import Outbox, _Lane
from bot.storage.locks import UserLocks
from bot.storage.queues import Anchor, OutboxRow

logger = logging.getLogger(__name__)

STALE_SECONDS = 5.0  # a message older than this, and not ours, was left: deliver it


@dataclass(slots=True)
class SharedOutbox(Outbox):
    """Deliver a chat's outbox rows, from the database, under the chat's lock across instances."""

    _failures: dict[int, int] = field(default_factory=dict)  # chat -> passing failures in a row
    _retrying: set[int] = field(default_factory=set)  # chats with a retry scheduled here
    _group_locks: UserLocks = field(init=False)

    def __post_init__(self) -> None:
        # A group's messages (the support group's notices) under a lock of their own that
        # nothing is taken inside: a user's turn posts there while holding the user's lock,
        # and the group's own updates take users' locks, so the group's update lock here
        # would let two instances wait for each other.
        store = self.store
        self._group_locks = UserLocks(lambda chat: store.job_lock(f"outbox-chat:{chat}"))

    async def submit(self, rows: Iterable[OutboxRow]) -> bool:
        """Deliver the rows' chats now (with anything older of theirs); retry in the background.

        Return False if the channel refused any of them for good right away.
        """
        accepted = True
        for chat_id in dict.fromkeys(row.message.chat_id for row in rows):
            accepted &= await self._deliver(chat_id)
        return accepted

    async def resume(self) -> int:
        """Deliver, in the background, every chat's waiting messages; return how many."""
        rows = await self.store.outbox_pending()
        for chat_id in dict.fromkeys(row.message.chat_id for row in rows):
            self._later_chat(chat_id, 0.0)
        if rows:
            logger.info("delivering %d message(s) waiting in the outbox", len(rows))
        return len(rows)

    async def sweep(self, now: float) -> int:
        """Deliver what another instance left (it died, or waits long): chats of old rows."""
        rows = await self.store.outbox_pending()
        chats = {
            row.message.chat_id
            for row in rows
            if now - row.created_at > STALE_SECONDS and row.message.chat_id not in self._retrying
        }
        for chat_id in chats:
            self._later_chat(chat_id, 0.0)
        return len(chats)

    def _later_chat(self, chat_id: int, wait: float) -> None:
        if chat_id in self._retrying:
            return
        self._retrying.add(chat_id)
        task = asyncio.create_task(self._retry(chat_id, wait))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(self, chat_id: int, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
        finally:
            self._retrying.discard(chat_id)
        try:
            await self._deliver(chat_id)
        except Exception as exc:  # the database failed: the next sweep tries again
            logger.warning("could not deliver chat %s's waiting messages: %s", chat_id, exc)

    async def _deliver(self, chat_id: int) -> bool:
        """Send the chat's waiting rows in order under its lock; delete them before letting go."""
        accepted = True
        wait: float | None = None
        # A private chat's id is its user's: the turn's own lock, taken again for free.
        locks = self.locks if chat_id > 0 else self._group_locks
        async with locks.hold(chat_id):
            rows = await self.store.outbox_pending(chat_id)
            lane = _Lane(deque(rows), self._failures.get(chat_id, 0))
            done: list[int] = []
            while lane.rows:
                try:
                    wait = await self._attempt(lane.rows[0], lane, done)
                except DeliveryError:  # refused for good, logged and marked
                    wait, accepted = None, False
                if wait is not None:
                    break
                lane.rows.popleft()
                lane.failures = 0
            await self._mark(done)
            if lane.failures:
                self._failures[chat_id] = lane.failures
            else:
                self._failures.pop(chat_id, None)
        if wait is not None:  # the rest waits in the outbox, for us or whoever comes first
            self._later_chat(chat_id, wait)
        return accepted

    async def _mark(self, done: list[int], anchor: tuple[Anchor, int] | None = None) -> None:
        """Delete delivered rows now, inside the chat's lock (no group commit across instances)."""
        if not done and anchor is None:
            return
        try:
            if anchor is not None:
                async with self.locks.hold(anchor[0].user_id):
                    await self.store.outbox_done(done, anchor)
            else:
                await self.store.outbox_done(done)
        except Exception:  # delivered all the same; whoever comes next may send it again
            logger.exception("could not mark %d delivered message(s)", len(done))
        done.clear()
