"""The engine in use, swapped atomically for a freshly validated one on /reload or SIGHUP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.conversation.engine import Engine

logger = logging.getLogger(__name__)


class LiveEngine:
    """Hold the current engine; `reload()` builds a new one and swaps it in only if it is valid.

    Adapters read `.engine` once per update and use that engine for the whole update, so an
    update never sees half of the old content and half of the new.
    """

    __slots__ = ("_build", "_engine", "_lock", "generation")

    def __init__(self, engine: Engine, build: Callable[[], Engine]) -> None:
        self._engine = engine
        self._build = build
        self._lock = asyncio.Lock()
        self.generation = 0  # how many reloads succeeded

    @property
    def engine(self) -> Engine:
        """Return the engine in use."""
        return self._engine

    async def reload(self) -> Engine:
        """Load and validate the content again; swap it in and return it.

        Raises KnowledgeError (with every problem) and keeps the old engine when the content
        is invalid. Concurrent reloads run one after the other.
        """
        async with self._lock:
            # Reading YAML and indexing patterns takes a moment: keep the event loop free.
            engine = await asyncio.to_thread(self._build)
            self._engine = engine
            self.generation += 1
            return engine
