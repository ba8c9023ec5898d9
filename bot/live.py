"""The engine in use, swapped atomically for a freshly validated one on /reload or SIGHUP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.conversation.engine import Engine
from bot.errors import KnowledgeError

logger = logging.getLogger(__name__)

Listener = Callable[[Engine], Awaitable[None]]


class LiveEngine:
    """Hold the current engine; `reload()` builds a new one and swaps it in only if it is valid.

    Channels read `.engine` once per update and use that engine for the whole update, so an
    update never sees half of the old content and half of the new.
    """

    __slots__ = ("_build", "_engine", "_listeners", "_lock", "_tasks")

    def __init__(self, engine: Engine, build: Callable[[], Engine]) -> None:
        self._engine = engine
        self._build = build
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[list[str] | None]] = set()  # SIGHUP reloads running

    @property
    def engine(self) -> Engine:
        """Return the engine in use."""
        return self._engine

    def on_reload(self, listener: Listener) -> None:
        """Call `listener` with each engine swapped in (e.g. to register a new command menu)."""
        self._listeners.append(listener)

    async def reload(self) -> Engine:
        """Load and validate the content again; swap it in and return it.

        Raises KnowledgeError (with every problem) and keeps the old engine when the content
        is invalid. Concurrent reloads run one after the other.
        """
        async with self._lock:
            # Reading YAML and indexing patterns takes a moment: keep the event loop free.
            engine = await asyncio.to_thread(self._build)
            self._engine = engine
            return engine

    async def reload_reporting(self, why: str) -> list[str] | None:
        """Reload; return None when swapped in, else every problem (the old engine is kept)."""
        try:
            engine = await self.reload()
        except KnowledgeError as exc:
            problems = [str(p) for p in exc.problems]
        except Exception as exc:  # a bug in loading must not take the running bot down
            logger.exception("%s: reload failed", why)
            problems = [f"{type(exc).__name__}: {exc}"]
        else:
            knowledge = engine.knowledge
            logger.info(
                "%s: reloaded %d entries and %d fixes",
                why,
                len(knowledge.entries),
                len(knowledge.fixes),
            )
            for listener in self._listeners:
                await listener(engine)
            return None
        logger.error("%s: refused, still using the previous knowledge:", why)
        for problem in problems:
            logger.error("  %s", problem)
        return problems

    def reload_in_background(self, why: str) -> None:
        """Start a reload from a signal handler (SIGHUP); its outcome goes to the log."""
        task = asyncio.get_running_loop().create_task(self.reload_reporting(why))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
