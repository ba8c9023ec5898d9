"""Choose each scorer's threshold, margin and "did you mean" floor on the TUNING split only.

    python -m benchmarks.calibrate_match

Prints, per scorer, the rule that recognises the most tuning positives directly, less WRONG_COST
times the confidently wrong ones (a wrong walk costs more than a question), while rejecting at
least MIN_REJECTED of the negatives (ties: the higher threshold), and the floor that puts the
right entry among the choices most often while offering choices for at most MAX_NEGATIVES_ASKED
of the negatives. The held-out split is never read here.
Copy the result into CALIBRATIONS (bot/matching/matcher.py).
benchmarks/crossval_match.py runs the same choice k-fold, to estimate how well it generalises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from benchmarks.bench_match import QUERIES, Labelled, load_labelled
from benchmarks.common import ROOT
from bot.app import load_content
from bot.matching.matcher import CALIBRATIONS, MAX_ALTERNATIVES, Matcher, Scorer

# Every tuning negative: the goal is 97% on the held-out split, and 108 negatives tuned on
# give an optimistic estimate.
MIN_REJECTED = 1.0
WRONG_COST = 3.0
# The negatives must stay rejected with the threshold this much lower: a rule that rejects the
# tuning negatives by a hair lets similar unseen ones through (crossval_match measures it).
NEGATIVE_CUSHION = 0.0
MAX_NEGATIVES_ASKED = 0.35
THRESHOLDS = np.arange(40.0, 90.5, 0.5)
# From 2: a one-point lead is within the noise of a reworded text (crossval_match: fewer
# negatives taken on unseen folds).
MARGINS = np.arange(2.0, 10.5, 1.0)
FLOORS = np.arange(20.0, 75.0, 2.5)


@dataclass(frozen=True)
class Scored:
    """A scorer's scores for labelled queries, with what a rule needs of them (rows: queries)."""

    labelled: list[Labelled]
    ids: npt.NDArray[np.str_]
    scores: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.int_]
    needed: npt.NDArray[np.int_]  # per column (ids): the length a text needs to be taken for it
    far: tuple[float, float] | None = None  # the scorer's shipped far_threshold, far_margin

    @property
    def order(self) -> npt.NDArray[np.intp]:
        return np.argsort(-self.scores, axis=1, kind="stable")

    def subset(self, rows: npt.NDArray[np.intp]) -> Scored:
        return Scored(
            [self.labelled[i] for i in rows],
            self.ids,
            self.scores[rows],
            self.lengths[rows],
            self.needed,
            self.far,
        )


def score(scorer: Scorer, labelled: Sequence[Labelled] | None = None) -> Scored:
    """Score the labelled queries (the tuning split by default) with one scorer."""
    content = load_content(ROOT / "knowledge", ROOT / "locales")
    matcher = Matcher(content.knowledge, content.normalizer, scorer=scorer)
    items = list(labelled) if labelled is not None else load_labelled(QUERIES)
    scores = matcher.scores([item.text for item in items])
    lengths = np.array([matcher.query_length(i.text) for i in items])
    rule = CALIBRATIONS[scorer]
    far = None
    if rule.far_threshold is not None and rule.far_margin is not None:
        far = (rule.far_threshold, rule.far_margin)
    return Scored(
        items, np.array(matcher.entry_ids), scores, lengths, matcher.needed_lengths(), far
    )


def _taken(data: Scored, threshold: float, margin: float) -> npt.NDArray[np.bool_]:
    order = data.order
    rows = np.arange(len(data.scores))
    best, second = data.scores[rows, order[:, 0]], data.scores[rows, order[:, 1]]
    clear = (best >= threshold) & (best - second >= margin)
    if data.far is not None:  # the far tier is fixed (see CALIBRATIONS); this rule is chosen
        clear |= (best >= data.far[0]) & (best - second >= data.far[1])
    return np.asarray((data.lengths >= data.needed[order[:, 0]]) & clear)


def choose(data: Scored) -> dict[str, float]:
    """Return the threshold, margin and floor chosen on these queries (see the module's doc)."""
    order = data.order
    positive = np.array([bool(i.accepted) for i in data.labelled])
    right = np.array(
        [data.ids[o[0]] in i.accepted for o, i in zip(order, data.labelled, strict=True)]
    )
    chosen: tuple[float, ...] = ()
    for threshold in THRESHOLDS:
        for margin in MARGINS:
            taken = _taken(data, threshold, margin)
            near = _taken(data, threshold - NEGATIVE_CUSHION, margin)
            if np.mean(~near[~positive]) < MIN_REJECTED:
                continue
            direct = float(np.mean(taken[positive] & right[positive]))
            wrong = float(np.mean(taken[positive] & ~right[positive]))
            key = (direct - WRONG_COST * wrong, direct, wrong, float(threshold), float(margin))
            chosen = max(chosen, key) if chosen else key
    _, direct, wrong, threshold, margin = chosen
    taken = _taken(data, threshold, margin)
    # The floors that offer the right entry most often, within the negatives' budget; of them
    # the middle one: the highest merely fits these queries, the lowest asks the most negatives.
    allowed: list[tuple[float, float]] = []
    for floor in FLOORS:
        asked_right, negatives_asked = _asked(data, taken, floor)
        if negatives_asked <= MAX_NEGATIVES_ASKED:
            allowed.append((asked_right, float(floor)))
    top = max(a for a, _ in allowed)
    best_floors = [f for a, f in allowed if a == top]
    floor_key = (top, best_floors[len(best_floors) // 2])
    return {
        "threshold": threshold,
        "margin": margin,
        "floor": floor_key[1],
        "direct": round(direct, 3),
        "wrong": round(wrong, 3),
        "recognised_or_asked": round(direct + floor_key[0], 3),
    }


def outcomes(data: Scored, threshold: float, margin: float, floor: float) -> list[str]:
    """Return per query what the rule does: matched, wrong, asked_right, asked, missed (positives)
    or rejected, rejected_asked, taken (negatives)."""
    taken = _taken(data, threshold, margin)
    order = data.order
    out = []
    for row, item, took, best in zip(data.scores, data.labelled, taken, order, strict=True):
        top = str(data.ids[best[0]])
        choices = {str(data.ids[i]) for i in best[:MAX_ALTERNATIVES] if row[i] >= floor}
        if item.accepted:
            if took:
                out.append("matched" if top in item.accepted else "wrong")
            elif choices:
                out.append("asked_right" if choices & item.accepted else "asked")
            else:
                out.append("missed")
        elif took:
            out.append("taken")
        else:
            out.append("rejected_asked" if choices else "rejected")
    return out


def _asked(data: Scored, taken: npt.NDArray[np.bool_], floor: float) -> tuple[float, float]:
    """Return the share of positives asked with the right choice, and of negatives asked."""
    asked_right = negatives_asked = 0
    positives = sum(bool(i.accepted) for i in data.labelled)
    for row, item, took, best in zip(data.scores, data.labelled, taken, data.order, strict=True):
        if took:
            continue
        choices = {str(data.ids[i]) for i in best[:MAX_ALTERNATIVES] if row[i] >= floor}
        if item.accepted:
            asked_right += bool(choices & item.accepted)
        else:
            negatives_asked += bool(choices)
    return asked_right / max(positives, 1), negatives_asked / max(len(data.labelled) - positives, 1)


def main() -> None:
    for scorer in Scorer:
        print(scorer.value, choose(score(scorer)))


if __name__ == "__main__":
    main()
