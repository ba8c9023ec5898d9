"""Who may queue work on SqliteStore's one aiosqlite connection, and when.

aiosqlite runs a connection's calls one after another in its own thread, in the order they
were queued. A call that is a whole transaction by itself (a SELECT, an INSERT … RETURNING, a
turn's save in one function) needs nothing more: many can be queued at once, and the thread
runs them back to back, taking the GIL once for a run of them instead of once per call
between two others' turns. Queued one at a time behind a lock, every call waited for that
thread to get the GIL from a busy event loop (up to the 5 ms switch interval), with every other
update's load and save queued behind it: a burst of pastes spent most of its time there.

A transaction of several calls (BEGIN, statements, COMMIT, each awaited) must have the
connection to itself: while one is open nothing else is queued, or it would run inside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

T = TypeVar("T")


class ConnectionGate:
    """Let one-call transactions share the connection's queue; give a longer one the queue alone."""

    __slots__ = ("_no_transaction", "_transactions")

    def __init__(self) -> None:
        self._transactions = asyncio.Lock()  # one open transaction at a time, in turn
        self._no_transaction = asyncio.Event()
        self._no_transaction.set()

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Queue a call that is a transaction by itself, once no longer transaction is open.

        `call` must queue its work before it first waits (aiosqlite's calls do): the gate is
        checked, and the work queued, without the event loop running anything in between.
        """
        while not self._no_transaction.is_set():
            await self._no_transaction.wait()
        return await call()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Have the connection alone for the block (the calls queued before it run first)."""
        async with self._transactions:
            self._no_transaction.clear()
            try:
                yield
            finally:
                # Before the lock is released: the calls waiting meanwhile are woken before the
                # next transaction can close the gate again, so none waits for ever.
                self._no_transaction.set()
