"""Questions that matched nothing, and what people picked afterwards. Pure.

The engine keeps what a user typed when it recognised nothing (a "did you mean" list or the
common errors), normalised and cut to MAX_CHARS, and then what they chose: an entry, or
"none" for "None of these". `python -m bot unmatched` lists the most frequent, so that authors
know which patterns to add to knowledge/entries.yaml.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

MAX_CHARS = 200
NONE_OF_THESE = "none"  # the choice stored for the "None of these" button


class UnmatchedKind(StrEnum):
    """What the bot answered to the question."""

    NO_MATCH = "no_match"  # nothing close: the common errors were offered
    DID_YOU_MEAN = "did_you_mean"  # a few close entries were offered


@dataclass(frozen=True, slots=True)
class UnmatchedQuery:
    """One question that matched nothing; (user_id, at) identifies it when the choice comes."""

    user_id: int
    text: str
    kind: UnmatchedKind
    choice: str | None  # an entry id, NONE_OF_THESE, or None while nothing was picked
    at: float


def normalize_question(text: str) -> str:
    """Return the text as kept: NFKC, lower case, one space between words, MAX_CHARS at most."""
    flat = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return flat[:MAX_CHARS].rstrip()


@dataclass(frozen=True, slots=True)
class QuestionCount:
    """How often one question was asked and what the askers picked."""

    text: str
    count: int
    choices: tuple[tuple[str, int], ...]  # (entry id or "none", times), most first
    kinds: tuple[tuple[str, int], ...]

    def as_json(self) -> dict[str, object]:
        """Return the JSON shape printed by `python -m bot unmatched --json`."""
        return {
            "text": self.text,
            "count": self.count,
            "choices": dict(self.choices),
            "kinds": dict(self.kinds),
        }


def most_frequent(
    queries: Iterable[UnmatchedQuery], limit: int | None = None
) -> list[QuestionCount]:
    """Group questions by text, most asked first (ties: alphabetical)."""
    counts: Counter[str] = Counter()
    choices: dict[str, Counter[str]] = defaultdict(Counter)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for q in queries:
        counts[q.text] += 1
        kinds[q.text][q.kind.value] += 1
        if q.choice is not None:
            choices[q.text][q.choice] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if limit is not None:
        ranked = ranked[:limit]
    return [
        QuestionCount(
            text,
            n,
            tuple(sorted(choices[text].items(), key=lambda kv: (-kv[1], kv[0]))),
            tuple(sorted(kinds[text].items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for text, n in ranked
    ]


def format_line(item: QuestionCount) -> str:
    """Return one line of `python -m bot unmatched`: count, text, what people picked."""
    picked = ", ".join(f"{choice} {n}" for choice, n in item.choices) or "-"
    return f"{item.count:>5}  {item.text}  →  {picked}"
