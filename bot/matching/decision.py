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


@dataclass(frozen=True, slots=True)
class Calibration:
    """When a scorer's best entry is taken, asked about, or left out."""

    threshold: float  # accept the best entry only from this score (0-100) on…
    margin: float  # … and only when it beats the best other entry by this much; else ask
    floor: float  # offer an entry as "did you mean" only from this score on


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
    clear = best >= rule.threshold and best - runner_up >= rule.margin
    sure = length >= MIN_QUERY_LEN and clear
    found = entry_ids[order[0]] if sure else None
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
