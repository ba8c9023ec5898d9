"""What a reply typed during a walk means: the fix did not help, it did, or "go back".

The same machinery as the entry matcher, on a small set of its own (knowledge/intents.yaml):
texts are normalised by the matcher's Normalizer and scored against every intent's examples
with rapidfuzz; the `other` examples ("wait", "how do I do that?") compete with the three
intents, so a reply that merely looks like one of them is not taken for it.

Spelling decides first. When it is unsure, meaning gets a say (with a sentence encoder, as in
the product): each intent's closest example by cosine, blended with its spelling score, so "works
now thank you" or 「一つ前の手順を表示して」 are understood although no example reads like them.
The reply's vector is usually found, not computed: the service embeds every message ahead, off
the event loop, and the vectors are shared (semantic.RECENT).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from bot.content.intents import Intent
from bot.matching.normalize import Normalizer
from bot.matching.semantic import Encoder, SemanticIndex, shipped_vectors

# How the decision numbers were chosen, on the `tune:` half of tests/data/replies.yaml
# (`python -m tests.matching.test_intents` prints every score): see that module's report.
# Accept the best intent only from this score (0-100) on...
THRESHOLD = 72.0
# ... and only when it beats the best example of any other intent (or of `other`) by this much.
MARGIN = 4.0
# Longer replies are stories or new problems ("now my mail doesn't work either"), not answers.
MAX_REPLY_CHARS = 60
# A short example found whole inside a longer reply ("no luck so far") is evidence, scaled by how
# much of the reply it covers: CONTAINED_BASE + CONTAINED_SPAN * (example length / reply length).
CONTAINED_BASE = 70.0
CONTAINED_SPAN = 30.0
# ... when it covers at least this share of the reply: "nothing" inside "nothing like an error"
# is not an answer.
CONTAINED_MIN_SHARE = 0.35
# Latin examples this short ("no", "back") count inside a longer reply only as a whole word of
# it; Japanese ones this short (前 and 次 are read まえ and つぎ) only as the whole reply
# (名前は？ is not "back").
SHORT_EXAMPLE = 4
SHORT_JAPANESE = 2
# Meaning, when spelling is unsure: SEMANTIC_WEIGHT x 100 x the closest example's cosine
# + (1 - SEMANTIC_WEIGHT) x the spelling score, per intent. Accept the best from
# SEMANTIC_THRESHOLD, SEMANTIC_MARGIN ahead of the next, and only if its spelling score is at
# least SEMANTIC_SPELLING_FLOOR (meaning alone confuses "it works" with "it doesn't work").
# Chosen on the `tune:` half of replies.yaml (a grid, then a value inside the flat region).
SEMANTIC_WEIGHT = 0.7
SEMANTIC_THRESHOLD = 61.0
SEMANTIC_MARGIN = 4.0
SEMANTIC_SPELLING_FLOOR = 40.0


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The intent a reply expresses (None when unsure), its score and the runner-up's."""

    intent: Intent | None
    score: float
    runner_up: float


class IntentClassifier:
    """Tell next / solved / back from a short reply typed while a fix is shown."""

    def __init__(
        self,
        examples: Mapping[Intent, tuple[str, ...]],
        normalizer: Normalizer,
        encoder: Encoder | None = None,
    ) -> None:
        self._normalize = normalizer
        labels: list[Intent] = []
        texts: list[str] = []
        for intent, items in examples.items():
            for norm in dict.fromkeys(normalizer(t) for t in items):
                if norm:
                    labels.append(intent)
                    texts.append(norm)
        self._labels = labels
        self._texts = texts
        self._lengths = np.array([len(t) for t in texts], dtype=np.float32)
        self._intents = tuple(dict.fromkeys(labels))
        self._meaning: SemanticIndex | None = None
        if encoder is not None:  # the examples as written, grouped in the order of _intents
            written = [[t for t in examples[intent] if t.strip()] for intent in self._intents]
            starts = np.cumsum([0, *(len(group) for group in written[:-1])], dtype=np.intp)
            flat = [t for group in written for t in group]
            self._meaning = SemanticIndex(encoder, flat, starts, shipped_vectors())

    def classify(self, text: str) -> IntentMatch:
        """Return the intent a reply expresses, or None when it is unsure or not a reply."""
        norm = self._normalize(text[: MAX_REPLY_CHARS * 2]).strip()
        if not norm or len(norm) > MAX_REPLY_CHARS:
            return IntentMatch(None, 0.0, 0.0)
        best = self.scores(norm)
        ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
        (top, score), (_, second) = ranked[0], ranked[1]
        if top is not Intent.OTHER and score >= THRESHOLD and score - second >= MARGIN:
            return IntentMatch(top, score, second)
        if self._meaning is not None:
            return self._by_meaning(text, best)
        return IntentMatch(None, score, second)

    def _by_meaning(self, text: str, spelling: dict[Intent, float]) -> IntentMatch:
        """Decide with the blend of meaning and spelling (spelling alone was unsure)."""
        assert self._meaning is not None
        cosines = self._meaning.similarity(self._meaning.vectors([text]))[0].tolist()
        blend = {
            intent: SEMANTIC_WEIGHT * 100.0 * cosine + (1 - SEMANTIC_WEIGHT) * spelling[intent]
            for intent, cosine in zip(self._intents, cosines, strict=True)
        }
        ranked = sorted(blend.items(), key=lambda kv: kv[1], reverse=True)
        (top, score), (_, second) = ranked[0], ranked[1]
        if (
            top is Intent.OTHER
            or score < SEMANTIC_THRESHOLD
            or score - second < SEMANTIC_MARGIN
            or spelling[top] < SEMANTIC_SPELLING_FLOOR
        ):
            return IntentMatch(None, score, second)
        return IntentMatch(top, score, second)

    def scores(self, norm: str) -> dict[Intent, float]:
        """Return each intent's best score for an already normalised reply."""
        whole = process.cdist([norm], self._texts, scorer=fuzz.ratio, dtype=np.float32)[0]
        contained = np.array([self._contained(norm, t) for t in self._texts], dtype=np.float32)
        combined = np.maximum(whole, contained)
        best: dict[Intent, float] = dict.fromkeys(self._intents, 0.0)
        for label, score in zip(self._labels, combined.tolist(), strict=True):
            best[label] = max(best[label], score)
        return best

    @staticmethod
    def _contained(norm: str, example: str) -> float:
        """Score an example found whole inside the reply, by how much of it it covers."""
        if example == norm or example not in norm:
            return 0.0
        if len(example) < CONTAINED_MIN_SHARE * len(norm):
            return 0.0
        if example.isascii():
            if len(example) <= SHORT_EXAMPLE and f" {example} " not in f" {norm} ":
                return 0.0
        elif len(example) <= SHORT_JAPANESE or not (
            norm.startswith(example) or norm.endswith(example)
        ):
            # Japanese has no spaces: an answer opens or closes the reply (「戻ってください」,
            # 「やっぱり戻って」); in the middle it is part of another word (機内モード).
            return 0.0
        return CONTAINED_BASE + CONTAINED_SPAN * len(example) / len(norm)
