"""Matching ahead of the turns: on a thread of its own, the texts of concurrent turns together.

Matcher.prepare scores texts (all of matching but the decision) and keeps their scores in a
ScoredAhead, where Matcher.match finds them.

The sentence encoder holds the GIL for most of its few milliseconds per text: one thread of
its own keeps the event loop's lag low (~20 ms p99 with 50 pastes at once, against 85-130 ms
in the default pool and 110-250 ms on the loop; benchmarks/bench_match.py). While it scores
one batch, the texts of the turns that arrive meanwhile wait, and then go as the next batch:
the encoder costs less than half as much per text in one call for 16 texts as in one call each
(bench_bot's pastes: 0.85 against 2.15 ms of CPU), and an idle bot's single text waits for
nothing. A text's decision is the same in any batch (Matcher.prepare; every labelled query).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from bot.matching.matcher import Matcher

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
# Texts scored ahead by `Matcher.prepare` (off the event loop) kept for the match that follows.
SCORED_AHEAD = 256

_encoder: ThreadPoolExecutor | None = None


class ScoredAhead:
    """Texts' score rows computed by `Matcher.prepare`, the newest SCORED_AHEAD (any thread)."""

    def __init__(self) -> None:
        self._rows: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, texts: Sequence[str], scores: FloatArray) -> None:
        with self._lock:
            for text, row in zip(texts, scores, strict=True):
                self._rows[text] = row
                self._rows.move_to_end(text)
            while len(self._rows) > SCORED_AHEAD:
                self._rows.popitem(last=False)

    def find(self, texts: Sequence[str]) -> FloatArray | None:
        """Return the texts' rows, or None unless every one was scored ahead."""
        with self._lock:
            rows = [self._rows.get(text) for text in texts]
        if any(row is None for row in rows):
            return None
        return np.stack([row for row in rows if row is not None])


def _encoder_thread() -> ThreadPoolExecutor:
    global _encoder
    if _encoder is None:
        _encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
    return _encoder


Waiting = tuple["Matcher", Sequence[str], "asyncio.Future[None]"]


class MatchAhead:
    """Score texts ahead of their turns (Matcher.prepare), those waiting at once in one batch.

    One per event loop user (the conversation service); the thread is the process's one.
    """

    __slots__ = ("_runner", "_waiting")

    def __init__(self) -> None:
        self._waiting: list[Waiting] = []
        self._runner: asyncio.Task[None] | None = None

    async def prepare(self, matcher: Matcher, texts: Sequence[str]) -> None:
        """Return once the texts are scored ahead (or scoring ahead failed: match scores them)."""
        if not texts:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((matcher, texts, done))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        await done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await loop.run_in_executor(_encoder_thread(), _prepare, batch)
            except Exception:  # a bug: each turn's own match() meets it again, in its turn
                logger.exception("could not match %d text(s) ahead of their turns", len(batch))
            finally:
                for _, _, done in batch:
                    if not done.done():  # its turn may have been cancelled meanwhile
                        done.set_result(None)


def _prepare(batch: Sequence[Waiting]) -> None:
    """Score a batch's texts, in the encoder's thread: one call per matcher (one, but a reload)."""
    by_matcher: dict[int, tuple[Matcher, list[str]]] = {}
    for matcher, texts, _ in batch:
        by_matcher.setdefault(id(matcher), (matcher, []))[1].extend(texts)
    for matcher, texts in by_matcher.values():
        matcher.prepare(list(dict.fromkeys(texts)))  # a text twice is scored once
