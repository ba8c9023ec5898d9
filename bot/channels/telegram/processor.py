"""The update processor: updates handled concurrently, each user's one at a time and in order.

Updates come from the inbox (polling.py, or a webhook): kept in the database already, so one
that fails because the database does is tried again, in its place in the user's order, until
it goes through; the user's later updates wait behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, Update
from telegram.constants import ChatType

from bot.channels.telegram.pictures import picture_of
from bot.storage.base import Store, is_storage_failure
from bot.storage.locks import UserLocks

logger = logging.getLogger(__name__)

# Updates handled at once, and Bot API connections: equal, so that no request queues inside the
# client's pool. 16 was the limit while PTB's httpx was the client (its pool rescans every
# connection and queued request on each request: ~10 ms of CPU per update with 256 over 64);
# on our aiohttp transport a burst is bound by round trips, not CPU, and 64 handled 300 users'
# pastes and taps 30-40% faster than 16, with less CPU per update (bench_bot, 2026-11-30).
CONCURRENT_UPDATES = 64
# Screenshots are read apart from that (seconds of OCR each, on two worker threads), so that
# a burst of pictures never takes the slots that text replies need.
PICTURES_AT_ONCE = 4
CONNECTION_POOL_SIZE = CONCURRENT_UPDATES + PICTURES_AT_ONCE
# Updates received and waiting for their user's turn or a slot: more are not fetched meanwhile.
MAX_WAITING_UPDATES = 4096
FIRST_RETRY = 0.5  # seconds before an update the database failed is tried again, doubled…
MAX_RETRY = 30.0  # …up to this

# What the bot reads of the message a button press came from: which one it is and its chat
# (whose turn the tap is). Its text and keyboard are most of a tap's update, and half the cost
# of parsing it (Update.de_json 165 -> 87 us); the inbox keeps the update as received.
TAPPED_MESSAGE_FIELDS = ("message_id", "chat", "date")  # date 0: an inaccessible message

Handle = Callable[[Update], Awaitable[None]]
Received = Callable[[Update], None]


class UpdateProcessor:
    """Process updates concurrently, but each user's updates one at a time and in order.

    A slot is taken only once it is the user's turn, so one user's queue (ten quick taps, a
    screenshot being read) never holds up anybody else; pictures have slots of their own. The
    user's lock is the service's (bot/storage/locks.py), so an operator's reply to a user
    waits for the user's own updates and the other way round.
    """

    def __init__(
        self,
        handle: Handle,
        store: Store,
        locks: UserLocks,
        max_concurrent_updates: int = CONCURRENT_UPDATES,
        pictures_at_once: int = PICTURES_AT_ONCE,
        max_waiting: int = MAX_WAITING_UPDATES,
        received: Received | None = None,
    ) -> None:
        self._handle = handle
        self._received = received  # told of each update as it is queued (matching ahead)
        self._store = store
        self._locks = locks
        self._work = asyncio.Semaphore(max_concurrent_updates)
        self._pictures = asyncio.Semaphore(pictures_at_once)
        self._max_waiting = max_waiting
        self._queues: dict[int, deque[Update]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0
        self._room = asyncio.Event()
        self._room.set()

    @property
    def store(self) -> Store:
        """Return the store whose inbox the updates come from."""
        return self._store

    @property
    def waiting(self) -> int:
        """Return how many updates were submitted and are not finished."""
        return self._waiting

    def busy(self, key: int) -> bool:
        """Return whether updates of this user (or group) are queued or being handled here."""
        return key in self._queues

    def submit(self, update: Update) -> None:
        """Queue an update (already in the inbox) behind its user's earlier ones."""
        self._waiting += 1
        if self._waiting >= self._max_waiting:
            self._room.clear()
        if self._received is not None:
            try:
                self._received(update)
            except Exception:  # only a head start: the update is handled all the same
                logger.exception("update %s: could not start ahead of its turn", update.update_id)
        key = user_key(update)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(update)
            return
        queue = self._queues[key] = deque([update])
        task = asyncio.create_task(self._run(key, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def room(self) -> None:
        """Wait until fewer than the maximum of updates wait."""
        await self._room.wait()

    async def join(self, timeout: float) -> None:
        """Wait for the updates in flight; past `timeout`, leave the rest for the next start."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
            logger.info("%d user(s)' updates left in the inbox for the next start", len(late))

    async def _run(self, key: int, queue: deque[Update]) -> None:
        try:
            while queue:
                await self._one(key, queue[0])
                queue.popleft()
                self._waiting -= 1
                if self._waiting < self._max_waiting:
                    self._room.set()
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _one(self, key: int, update: Update) -> None:
        """Handle one update; while the database fails, try again later."""
        failures = 0
        while True:
            try:
                async with self._locks.hold(key):
                    slots = self._pictures if _has_picture(update) else self._work
                    async with slots:
                        await self._handle(update)
                return
            except Exception as exc:
                if not is_storage_failure(exc):
                    # A bug: trying again would fail again, and hold up the user for good.
                    logger.error("unhandled error in update %s", update.update_id, exc_info=exc)
                    await self._give_up(update.update_id)
                    return
                failures += 1
                await _wait_after(failures, f"update {update.update_id}", exc)

    async def _give_up(self, update_id: int) -> None:
        failures = 0
        while True:
            try:
                await self._store.inbox_done(update_id)
                return
            except Exception as exc:
                if not is_storage_failure(exc):
                    raise
                failures += 1
                await _wait_after(failures, f"update {update_id}", exc)


async def _wait_after(failures: int, what: str, exc: BaseException) -> None:
    wait = min(MAX_RETRY, FIRST_RETRY * 2 ** (failures - 1))
    logger.warning("%s: the database failed (%s); trying again in %.1f s", what, exc, wait)
    await asyncio.sleep(wait)


def _has_picture(update: object) -> bool:
    return (
        isinstance(update, Update)
        and update.message is not None
        and (picture_of(update.message) is not None)
    )


def parse_update(raw: dict[str, Any], bot: Bot) -> Update:
    """Return PTB's Update of a received update, a button press's message cut to what is read."""
    query = raw.get("callback_query")
    if isinstance(query, dict):
        message = query.get("message")
        if isinstance(message, dict):
            tapped = {k: message[k] for k in TAPPED_MESSAGE_FIELDS if k in message}
            raw = {**raw, "callback_query": {**query, "message": tapped}}
    return Update.de_json(raw, bot)


def user_key(update: object) -> int:
    """Return whose turn an update is: the user's, or a group's (apart from its members)."""
    if isinstance(update, Update):
        chat = update.effective_chat
        if chat is not None and chat.type != ChatType.PRIVATE:
            return chat.id  # a group's updates one at a time, apart from its members' chats
        if update.effective_user is not None:
            return update.effective_user.id
        if update.effective_chat is not None:
            return update.effective_chat.id
    return 0
