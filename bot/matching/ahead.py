"""Matching ahead of the turns: on threads of their own, the texts of concurrent turns together.

Matcher.prepare scores texts (all of matching but the decision) and keeps their scores in a
ScoredAhead, where Matcher.match finds them.

Matching runs on MATCHING_THREADS threads of its own, never on the event loop, which keeps the
loop's lag low (~20 ms p99 with 50 pastes at once, against 85-130 ms in the default pool and
110-250 ms on the loop; benchmarks/bench_match.py). While they score their batches, the texts
of the turns that arrive meanwhile wait, and then go together as the next batch: the encoder
costs less than half as much per text in one call for 16 texts as in one call each (bench_bot's
pastes: 0.85 against 2.15 ms of CPU), and an idle bot's single text waits for nothing. A text's
decision is the same in any batch (Matcher.prepare; every labelled query).
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

from bot.heap import give_back

if TYPE_CHECKING:
    from bot.matching.matcher import Matcher

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
# Texts scored ahead by `Matcher.prepare` (off the event loop) kept for the match that follows:
# as many as the updates that may wait for their turns (MAX_WAITING_UPDATES of the Telegram
# processor), so that none scored when it came is forgotten before its turn in a burst. A row
# is 100 bytes; the texts are those of the waiting updates (a few MB at worst, then replaced).
SCORED_AHEAD = 4096
# Texts scored in one go at most; texts waiting together are shared out among the free
# matching threads, so that a burst of 50 goes as 25 + 25 and one of 300 as 64 + 64, then 64…
# The encoder's cost per text falls little beyond 16 (0.85 ms of CPU, 0.79 in 64), but a
# batch's fixed costs (the encoder's last layers stream 5 MB of weights per call; one
# rapidfuzz call over every pattern; a GIL hand-over per numpy call while the loop is busy)
# are shared by more texts, and texts share more word pieces (bot/matching/forward.py):
# with one thread, 300 of bench_bot's pastes cost the bot 0.66 and 0.72 s of CPU in batches
# of 32 against 0.72 and 0.79 in 16; with two, 0.65-0.71 s in batches of 64 against
# 0.68-0.75 in 32, and 506-594 pastes/s against 489-553 (2026-11-30, alternated bursts).
# A text alone still goes at once.
BATCH = 64

# Batches scored at once, each on a thread of its own. Most of a batch's time is in numpy's
# matrix products and rapidfuzz's loops, which let go of the GIL: on a quiet 2-core machine two
# matchers score 288 texts in 0.26 s against 0.39 s for one, and bench_bot's 300 pastes went
# 417-466 -> 451-518 per second (2026-11-30, load < 0.5, six alternated bursts each; the
# event-loop lag of bench_loop was the same, p99 median of rounds 5.9 ms against 5.2). On a
# busy machine the second thread waits for a core, as the one did: no slower.
MATCHING_THREADS = 2

_threads: ThreadPoolExecutor | None = None


class ScoredAhead:
    """Texts' score rows and lengths from `Matcher.prepare`, the newest SCORED_AHEAD (any thread).

    The length is the text's for the decision (Matcher._length): with it, matching a text
    scored ahead does not normalise it again on the loop.
    """

    def __init__(self) -> None:
        self._rows: OrderedDict[str, tuple[FloatArray, int]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, texts: Sequence[str], scores: FloatArray, lengths: Sequence[int]) -> None:
        with self._lock:
            for text, row, length in zip(texts, scores, lengths, strict=True):
                self._rows[text] = (row, length)
                self._rows.move_to_end(text)
            while len(self._rows) > SCORED_AHEAD:
                self._rows.popitem(last=False)

    def __contains__(self, text: str) -> bool:
        with self._lock:
            return text in self._rows

    def find(self, texts: Sequence[str]) -> tuple[FloatArray, list[int]] | None:
        """Return the texts' rows and lengths, or None unless every one was scored ahead."""
        with self._lock:
            found = [self._rows.get(text) for text in texts]
        kept = [item for item in found if item is not None]
        if len(kept) < len(found):
            return None
        return np.stack([row for row, _ in kept]), [length for _, length in kept]


def _matching_threads() -> ThreadPoolExecutor:
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(max_workers=MATCHING_THREADS, thread_name_prefix="matching")
    return _threads


Key = tuple["Matcher", str]  # a text, and the matcher (the engine's: a reload brings another)


class MatchAhead:
    """Score texts ahead of their turns (Matcher.prepare), those waiting at once in batches.

    A channel may `start` as soon as an update is received, so that the matching threads work
    on the texts of updates that still wait for their turn (or for a free slot) while the loop
    runs other turns; the turn's `prepare` then waits for that same scoring, or for none.
    One per conversation service; the threads are the process's.
    """

    __slots__ = ("_batches", "_running", "_scoring", "_starting", "_waiting")

    def __init__(self) -> None:
        self._waiting: list[Key] = []  # in the order they came
        self._scoring: dict[Key, asyncio.Future[None]] = {}  # waiting, or in a batch scored
        self._running = 0  # batches being scored
        self._batches: set[asyncio.Task[None]] = set()
        self._starting: asyncio.Handle | None = None

    def start(self, matcher: Matcher, texts: Sequence[str]) -> None:
        """Have the texts scored ahead, without waiting (a turn will match them)."""
        self._submit(matcher, texts)

    async def prepare(self, matcher: Matcher, texts: Sequence[str]) -> None:
        """Return once the texts are scored ahead (or scoring ahead failed: match scores them)."""
        scoring = self._submit(matcher, texts)
        if scoring:  # not cancelled with this turn: another may wait for the same text
            await asyncio.wait(scoring)

    def _submit(self, matcher: Matcher, texts: Sequence[str]) -> list[asyncio.Future[None]]:
        scoring = []
        for text in texts:
            key = (matcher, text)
            future = self._scoring.get(key)
            if future is None:
                if matcher.scored_ahead(text):
                    continue
                future = self._scoring[key] = asyncio.get_running_loop().create_future()
                self._waiting.append(key)
            scoring.append(future)
        # Started once the loop has run what is ready: the texts submitted meanwhile (a
        # getUpdates batch, the turns that arrive together) go together.
        if self._waiting and self._starting is None and self._running < MATCHING_THREADS:
            self._starting = asyncio.get_running_loop().call_soon(self._start_batches)
        return scoring

    def _start_batches(self) -> None:
        """Start the waiting texts' batches, as many as there are free matching threads."""
        self._starting = None
        loop = asyncio.get_running_loop()
        while self._waiting and self._running < MATCHING_THREADS:
            # The waiting texts shared out among the free threads, BATCH at most each.
            free = MATCHING_THREADS - self._running
            size = min(BATCH, -(-len(self._waiting) // free))
            batch, self._waiting = self._waiting[:size], self._waiting[size:]
            self._running += 1
            scoring = loop.create_task(self._score(batch))
            self._batches.add(scoring)
            scoring.add_done_callback(self._batches.discard)

    async def _score(self, batch: list[Key]) -> None:
        """Score a batch on a matching thread; then start the next batch on it."""
        try:
            await asyncio.get_running_loop().run_in_executor(_matching_threads(), _prepare, batch)
        except Exception:  # a bug: each turn's own match() meets it again, in its turn
            logger.exception("could not match %d text(s) ahead of their turns", len(batch))
        finally:
            for key in batch:
                self._scoring.pop(key).set_result(None)
            self._running -= 1
        self._start_batches()  # not when cancelled (shutting down): nothing new then


def _prepare(batch: Sequence[Key]) -> None:
    """Score a batch's texts, on a matching thread: one call per matcher (one, but a reload)."""
    by_matcher: dict[Matcher, list[str]] = {}
    for matcher, text in batch:
        by_matcher.setdefault(matcher, []).append(text)
    for matcher, texts in by_matcher.items():
        matcher.prepare(texts)
    give_back()  # a batch's freed arrays (bot/heap.py)
