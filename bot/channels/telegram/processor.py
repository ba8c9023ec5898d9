"""The update processor: updates handled concurrently, each user's one at a time and in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import BaseUpdateProcessor

from bot.channels.telegram.pictures import picture_of
from bot.storage.locks import UserLocks

# Updates handled at once, and Bot API connections: equal, so that no request ever queues inside
# httpcore, whose pool rescans every connection and every queued request on each request. With
# 256 updates over 64 connections a burst cost ~10 ms of CPU per update instead of ~3 as soon as
# the store stopped pacing the requests (benchmarks/bench_bot.py, MemoryStore). 16 requests in
# flight still outrun Telegram's ~30 messages/s at a 100 ms round trip.
CONCURRENT_UPDATES = 16
# Screenshots are read apart from that (seconds of OCR each, on two worker threads), so that
# a burst of pictures never takes the slots that text replies need.
PICTURES_AT_ONCE = 4
CONNECTION_POOL_SIZE = CONCURRENT_UPDATES + PICTURES_AT_ONCE
# Updates fetched from Telegram and waiting for their user's turn or a slot (bounded memory).
MAX_WAITING_UPDATES = 4096


class PerUserProcessor(BaseUpdateProcessor):
    """Process updates concurrently, but each user's updates one at a time and in order.

    A slot is taken only once it is the user's turn, so one user's queue (ten quick taps, a
    screenshot being read) never holds up anybody else; pictures have slots of their own. The
    user's lock is the service's (bot/storage/locks.py), so an operator's reply to a user
    waits for the user's own updates and the other way round.
    """

    def __init__(
        self,
        locks: UserLocks,
        max_concurrent_updates: int = CONCURRENT_UPDATES,
        pictures_at_once: int = PICTURES_AT_ONCE,
        max_waiting: int = MAX_WAITING_UPDATES,
    ) -> None:
        super().__init__(max_waiting)
        self._locks = locks
        self._work = asyncio.Semaphore(max_concurrent_updates)
        self._pictures = asyncio.Semaphore(pictures_at_once)

    async def do_process_update(self, update: object, coroutine: Awaitable[object]) -> None:
        """Wait for the user's turn, then for a slot, then handle the update."""
        async with self._locks.hold(user_key(update)):
            slots = self._pictures if _has_picture(update) else self._work
            async with slots:
                await coroutine

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _has_picture(update: object) -> bool:
    return (
        isinstance(update, Update)
        and update.message is not None
        and (picture_of(update.message) is not None)
    )


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
