"""Typed replies during a walk: next, solved, back, or nothing claimed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from bot.content.intents import Intent, load_intents
from bot.errors import KnowledgeError
from bot.matching.intents import IntentClassifier
from bot.matching.normalize import default_normalizer
from bot.matching.semantic import RECENT, default_encoder
from tests.support.encoders import Counting
from tests.support.paths import DATA, KNOWLEDGE

REPLIES = yaml.safe_load((DATA / "replies.yaml").read_text(encoding="utf-8"))


def build(*, meaning: bool) -> IntentClassifier:
    """The classifier as the product builds it (meaning: True), or on spelling alone."""
    encoder = default_encoder() if meaning else None
    return IntentClassifier(load_intents(KNOWLEDGE / "intents.yaml"), default_normalizer(), encoder)


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return build(meaning=True)


@pytest.fixture(scope="module")
def spelling_only() -> IntentClassifier:
    return build(meaning=False)


def outcomes(classifier: IntentClassifier, split: str) -> tuple[int, int, list[str]]:
    """Return (right, wrongly claimed, report lines) over one split of replies.yaml."""
    right = claimed_wrong = 0
    lines = []
    for item in REPLIES[split]:
        found = classifier.classify(item["q"])
        got = found.intent.value if found.intent else None
        right += got == item["expect"]
        claimed_wrong += got is not None and got != item["expect"]
        if got != item["expect"]:
            lines.append(f"{item['q']!r}: expected {item['expect']}, got {got} ({found.score:.1f})")
    return right, claimed_wrong, lines


def test_tuning_replies_are_understood(classifier: IntentClassifier) -> None:
    right, claimed_wrong, lines = outcomes(classifier, "tune")
    total = len(REPLIES["tune"])
    assert right / total >= 0.95, "\n".join(lines)
    # A wrong claim moves the walk; saying nothing only asks the user to use the buttons.
    assert claimed_wrong / total <= 0.03, "\n".join(lines)


def test_spelling_alone_still_understands_most(spelling_only: IntentClassifier) -> None:
    right, claimed_wrong, lines = outcomes(spelling_only, "tune")
    total = len(REPLIES["tune"])
    assert right / total >= 0.9, "\n".join(lines)
    assert claimed_wrong / total <= 0.03, "\n".join(lines)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("works now thank you", Intent.SOLVED),
        ("一つ前の手順を表示して", Intent.BACK),
        ("no improvement", Intent.NEXT),
    ],
)
def test_meaning_helps_where_spelling_is_unsure(
    classifier: IntentClassifier, spelling_only: IntentClassifier, text: str, intent: Intent
) -> None:
    assert spelling_only.classify(text).intent is None
    assert classifier.classify(text).intent is intent


def test_the_reply_embedded_ahead_is_not_encoded_again() -> None:
    # The service embeds a message off the event loop before its turn (matcher.prepare); the
    # classifier then finds the vector in the shared RECENT memory instead of encoding it.
    counting = Counting()
    classifier = IntentClassifier(
        load_intents(KNOWLEDGE / "intents.yaml"), default_normalizer(), counting
    )
    text = "works now, thank you so much"
    counting.encoded.clear()
    RECENT.keep(counting, [text], counting.inner.encode([text]))
    assert classifier.classify(text).intent is Intent.SOLVED
    assert counting.encoded == []
    classifier.classify("no improvement whatsoever")  # not embedded ahead: encoded now
    assert counting.encoded == ["no improvement whatsoever"]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("didn't work", Intent.NEXT),
        ("still the same", Intent.NEXT),
        ("ダメでした", Intent.NEXT),
        ("変わらない", Intent.NEXT),
        ("it works now", Intent.SOLVED),
        ("that fixed it", Intent.SOLVED),
        ("直りました", Intent.SOLVED),
        ("解決しました", Intent.SOLVED),
        ("back", Intent.BACK),
        ("戻る", Intent.BACK),
    ],
)
def test_the_issue_examples(classifier: IntentClassifier, text: str, intent: Intent) -> None:
    assert classifier.classify(text).intent is intent


@pytest.mark.parametrize(
    "text",
    ["wait", "how do I do that?", "名前は？", "機内モードってなに", "x" * 500, "", "🙂"],
)
def test_other_replies_claim_nothing(classifier: IntentClassifier, text: str) -> None:
    assert classifier.classify(text).intent is None


def test_a_missing_intent_is_a_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text("intents:\n  next: {en: [nope]}\n  solved: {en: [fixed]}\n", "utf-8")
    with pytest.raises(KnowledgeError) as info:
        load_intents(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2: intent 'back' is missing",
        f"{path}:2: intent 'other' is missing",
    ]


if __name__ == "__main__":  # python -m tests.matching.test_intents [tune|holdout] [--spelling]
    split = next((a for a in sys.argv[1:] if not a.startswith("--")), "tune")
    meaning = "--spelling" not in sys.argv
    right, wrong, report = outcomes(build(meaning=meaning), split)
    print("\n".join(report))
    print(f"{split}: {right}/{len(REPLIES[split])} right, {wrong} wrongly claimed")
