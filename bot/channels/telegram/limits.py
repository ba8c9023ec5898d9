"""Rate limits for the support group: posts caused by one user, hints to one member."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_TRACKED = 10_000  # keys remembered; the fullest buckets are forgotten first


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    refused: bool = False  # refused since the last post that went through


class PostBudget:
    """A token bucket per key: `burst` posts at once, then one every `every` seconds."""

    __slots__ = ("_buckets", "_burst", "_clock", "_every")

    def __init__(
        self, burst: int, every: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = float(burst)
        self._every = every
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: int) -> bool:
        """Spend one post of `key`'s budget; False if there is none left."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) / self._every)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        bucket.refused = False
        return True

    def first_refusal(self, key: int) -> bool:
        """After take() said no: True the first time since `key`'s last post went through."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.refused:
            return False
        bucket.refused = True
        return True

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.at) / self._every >= self._burst
        ]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]
