"""Per-user order: one lock per user (or group chat) id, shared by every channel and job.

With several instances on one database, each lock also takes the database's lock of the same
id (PostgresStore.user_lock), after the in-process one: one waiter per id and instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0  # tasks holding or waiting for the lock
    owner: asyncio.Task[object] | None = None


class UserLocks:
    """Hold a user's lock while their state is loaded, decided on and saved.

    Re-entrant within one task: a channel that orders a user's updates itself (the Telegram
    update processor) holds the lock, and the turn it runs takes it again without waiting.
    Locks nobody holds or waits for are dropped, so memory does not grow with users.
    """

    __slots__ = ("_entries", "_shared")

    def __init__(
        self, shared: Callable[[int], AbstractAsyncContextManager[None]] | None = None
    ) -> None:
        self._entries: dict[int, _Entry] = {}
        self._shared = shared  # the database's lock of an id, across instances; None: one

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, key: int) -> AsyncIterator[None]:
        """Hold the lock of `key` (a user id, or a group chat's id) for the block."""
        task = asyncio.current_task()
        entry = self._entries.get(key)
        if entry is not None and task is not None and entry.owner is task:
            yield  # this task holds it already
            return
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.holders += 1
        try:
            async with entry.lock:
                entry.owner = task
                try:
                    if self._shared is None:
                        yield
                    else:
                        async with self._shared(key):
                            yield
                finally:
                    entry.owner = None
        finally:
            # Counted, not asked of the lock: a released lock looks free before its next
            # waiter has woken up.
            entry.holders -= 1
            if entry.holders == 0 and self._entries.get(key) is entry:
                del self._entries[key]
