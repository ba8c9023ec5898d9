"""PostgreSQL advisory locks: one user's updates at a time, and one leader per periodic job."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from types import TracebackType
from typing import Self

import asyncpg

from bot.config import redact_url

logger = logging.getLogger(__name__)

# Advisory lock keys are one bigint space shared by every application on the database; hashing a
# name of our own keeps ours away from the small integers others tend to use. Two users hashing
# alike would only wait for each other now and then.
_KEY_PREFIX = "icloud-support-bot"
# Errors that mean the connection is gone (server restart, network, pg_terminate_backend).
CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def lock_key(kind: str, name: object) -> int:
    """Return the signed 64-bit advisory lock key for one user, job or purpose."""
    digest = hashlib.blake2b(f"{_KEY_PREFIX}:{kind}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Leadership:
    """Whether this process runs a periodic job (status poller, pruning, learning) now.

    The lead is a session advisory lock on a connection of its own, outside the pool: it lasts
    as long as that connection, so when the process dies (even by kill -9) the server drops the
    lock and the next instance to ask for it takes the lead. Ask `held()` before each run of the
    job: it confirms the connection still lives, and takes the lead when nobody has it.
    """

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self._url = url
        self._key = lock_key("leader", name)
        self._conn: asyncpg.Connection | None = None
        self._holding = False
        self._lock = asyncio.Lock()  # one query at a time on the connection

    async def held(self) -> bool:
        """Return whether this process leads now, taking the lead if nobody has it."""
        async with self._lock:
            try:
                if self._holding and self._conn is not None:
                    await self._conn.fetchval("SELECT 1")
                    return True
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._url)
                self._holding = bool(
                    await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key)
                )
            except CONNECTION_ERRORS as exc:
                if self._holding:
                    logger.warning("lost the lead of %s: %s", self.name, type(exc).__name__)
                else:
                    logger.warning(
                        "cannot ask %s for the lead of %s: %s",
                        redact_url(self._url),
                        self.name,
                        type(exc).__name__,
                    )
                await self._drop()
                return False
            if self._holding:
                logger.info("this instance now leads %s", self.name)
            return self._holding

    async def wait(self, poll_seconds: float = 1.0) -> None:
        """Return once this process leads, asking every poll_seconds."""
        while not await self.held():
            await asyncio.sleep(poll_seconds)

    async def close(self) -> None:
        """Give up the lead (closing its connection); calling it twice is harmless."""
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        self._holding = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)
            except CONNECTION_ERRORS:
                conn.terminate()

    async def __aenter__(self) -> Self:
        await self.held()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
