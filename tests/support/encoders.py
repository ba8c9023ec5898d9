"""An encoder for tests that count what reaches the real sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence

from bot.matching.semantic import Encoder, FloatArray, default_encoder


class Counting:
    """The real encoder (or `inner`), counting the texts it is asked to encode.

    It has the inner encoder's name, so vectors kept for that encoder (the shipped file,
    semantic.RECENT) are found for it as well.
    """

    def __init__(self, inner: Encoder | None = None) -> None:
        self.inner = inner if inner is not None else default_encoder()
        self.name = self.inner.name
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> FloatArray:
        self.encoded.extend(texts)
        return self.inner.encode(texts)
