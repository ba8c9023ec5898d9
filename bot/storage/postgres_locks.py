"""PostgresStore's session locks: a user's (or a job's) advisory lock, and its connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import asyncpg

from bot.storage.advisory import lock_key
from bot.storage.postgres_queues import Conn


class _LockedConnections:
    """Pooled connections that may still hold a user's lock: only those are reset on release.

    asyncpg's default reset runs four statements (unlock all, close cursors, unlisten, reset
    settings) at every release: a round trip per store call, half of PostgreSQL's throughput
    (benchmarks/bench_store.py). Our calls leave no session state behind (asyncpg still rolls
    back an open transaction itself) except an advisory lock whose unlock did not run, so
    only a connection that took one and did not let go of it is reset.
    """

    def __init__(self) -> None:
        self.pids: set[int] = set()  # server pids: a connection object is not hashable by proxy

    async def reset(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        pid = conn.get_server_pid()
        if pid in self.pids:
            await conn.execute("SELECT pg_advisory_unlock_all()")
            self.pids.discard(pid)


@dataclass(slots=True)
class _Bound:
    """The connection that holds a user's lock, used by every store call inside the lock."""

    conn: Conn
    lock: asyncio.Lock  # tasks started inside the lock share the connection one at a time
    active: bool = True  # False once the lock is let go: a task that outlived it uses the pool


class SessionLocks:
    """Advisory locks held on a pooled connection that the store's calls inside them share."""

    _pool: asyncpg.Pool
    _locked: _LockedConnections
    _bound: ContextVar[_Bound | None]

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        bound = self._bound.get()
        if bound is not None:
            async with bound.lock:
                if bound.active:
                    yield bound.conn
                    return
        async with self._pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def user_lock(self, user_id: int) -> AsyncIterator[None]:
        """Hold the user's lock across every instance on this database until the block ends.

        Wrap one update of one user (load, engine, save, replies) in it so that two instances
        never interleave the same user's updates. The lock is a session advisory lock on a
        pooled connection that every call of this store inside the block then uses, so the
        block needs one connection, not two (a pool of N blocks could otherwise starve). Each
        call still commits on its own. A process that dies drops its connection and its locks;
        a nested lock for another user takes it on the same connection. Waits without limit
        (the server's lock_timeout, if set, bounds it). Session locks need the server itself
        or a session-mode pooler: PgBouncer in transaction mode would share the session.
        """
        async with self._advisory(lock_key("user", user_id)):
            yield

    @asynccontextmanager
    async def job_lock(self, name: str) -> AsyncIterator[None]:
        """Hold a job's lock across instances (learning the fix order: one at a time)."""
        async with self._advisory(lock_key("job", name)):
            yield

    @asynccontextmanager
    async def _advisory(self, key: int) -> AsyncIterator[None]:
        bound = self._bound.get()
        if bound is not None and bound.active:
            async with bound.lock:
                await bound.conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                yield
            finally:
                async with bound.lock:
                    await bound.conn.execute("SELECT pg_advisory_unlock($1)", key)
            return
        async with self._pool.acquire() as conn:
            # Until the unlock below has run, the pool's reset unlocks on release (and a
            # connection that fails is closed, which unlocks too): also on cancellation.
            pid = conn.get_server_pid()
            self._locked.pids.add(pid)
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            bound = _Bound(conn, asyncio.Lock())
            token = self._bound.set(bound)
            try:
                yield
            finally:
                self._bound.reset(token)
                async with bound.lock:  # after the call in flight, if any
                    bound.active = False
                    # All, not just this key: also a nested lock whose own unlock failed.
                    await conn.execute("SELECT pg_advisory_unlock_all()")
                self._locked.pids.discard(pid)
