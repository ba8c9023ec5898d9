"""One asyncio lock per user, so that one user's updates are handled one at a time, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class UserLocks:
    """Hands out a lock per user id; a lock nobody holds or waits for is forgotten.

    asyncio.Lock wakes its waiters first come, first served, so a user's updates keep the order
    they arrived in. Forgetting idle locks keeps memory flat with any number of users.
    """

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}  # user id -> coroutines holding or waiting for it

    @asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        """Hold the user's lock for the duration of the block."""
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        self._users[user_id] = self._users.get(user_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[user_id] -= 1
            if not self._users[user_id]:
                del self._users[user_id]
                del self._locks[user_id]

    def __len__(self) -> int:
        """Return how many users have a lock held or awaited right now."""
        return len(self._locks)
