"""What a matcher's scores decide: the entry taken, or the alternatives offered."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# How many alternatives a result carries at most.
MAX_ALTERNATIVES = 3
# A text shorter than this (normalised, spaces aside: "iCloud", "sync", "エラー") names a subject
# but not a problem; it gets alternatives, never an entry.
MIN_QUERY_LEN = 8
# Nor does one with fewer characters than this beyond iCloud/Apple and generic words ("iCloudの
# エラー", "icloud problem") unless it names a topic: it is as vague as "iCloud" or "エラー".
MIN_SPECIFIC_LEN = 4
# A question about a topic is whole in fewer characters ("まとめると?", "予防策は?", "tldr pls"):
# it needs only this many, and the same sure score and margin.
MIN_TOPIC_LEN = 4


@dataclass(frozen=True, slots=True)
class Calibration:
    """When a scorer's best entry is taken, asked about, or left out."""

    threshold: float  # accept the best entry only from this score (0-100) on…
    margin: float  # … and only when it beats the best other entry by this much; else ask
    floor: float  # offer an entry as "did you mean" only from this score on
    # Also accept it from far_threshold (lower) when it is far_margin (more) ahead of every
    # other entry: a plainly told story scores lower than a paste but has no rival.
    far_threshold: float | None = None
    far_margin: float | None = None

    def clear(self, best: float, runner_up: float) -> bool:
        """Tell whether a best score, with this runner-up, is sure enough to take."""
        if best >= self.threshold and best - runner_up >= self.margin:
            return True
        far, lead = self.far_threshold, self.far_margin
        return far is not None and lead is not None and best >= far and best - runner_up >= lead


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another entry the text may be about, with its score."""

    entry: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The entry a text is about (or None when unsure), its score and the runners-up.

    A question about a topic of knowledge/info.yaml (prices, contacting Apple…) sets `topic`
    instead of `entry`; alternatives name entries and topics alike.
    """

    query: str
    entry: str | None
    score: float
    alternatives: tuple[Alternative, ...] = ()
    topic: str | None = None

    @property
    def found(self) -> str | None:
        """Return the entry or topic recognised, or None."""
        return self.entry if self.entry is not None else self.topic


def needed_length(topic: bool) -> int:
    """Return the length a text needs to be taken for an entry, or for a topic (shorter)."""
    return MIN_TOPIC_LEN if topic else MIN_QUERY_LEN


def decide(
    rule: Calibration,
    entry_ids: tuple[str, ...],
    topic_ids: frozenset[str],
    text: str,
    length: int,
    row: FloatArray,
) -> MatchResult:
    """Take the best entry if the rule is sure of it; offer the others above the floor."""
    # Best first, ties in entry order: what np.argsort(-row, kind="stable") gives, in Python,
    # because this runs on the event loop and numpy's sort lets go of the GIL: taking it back
    # from the matching thread cost ~0.4 ms per text in a burst of pastes (cProfile).
    scores = row.tolist()
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    best = scores[order[0]]
    runner_up = scores[order[1]] if len(order) > 1 else 0.0
    clear = rule.clear(best, runner_up)
    needed = needed_length(entry_ids[order[0]] in topic_ids)
    found = entry_ids[order[0]] if clear and length >= needed else None
    # order is best first: stop at the floor or once there are enough, not at the last entry.
    above_floor = itertools.takewhile(lambda i: scores[i] >= rule.floor, order)
    alternatives = tuple(
        itertools.islice(
            (
                Alternative(entry_ids[i], round(scores[i], 1))
                for i in above_floor
                if entry_ids[i] != found
            ),
            MAX_ALTERNATIVES,
        )
    )
    if found in topic_ids:
        return MatchResult(text, None, round(best, 1), alternatives, topic=found)
    return MatchResult(text, found, round(best, 1), alternatives)
