"""Choose each scorer's threshold, margin and "did you mean" floor on the TUNING split only.

    python -m benchmarks.calibrate_match

Prints, per scorer, the rule that recognises the most tuning positives directly, less WRONG_COST
times the confidently wrong ones (a wrong walk costs more than a question), while rejecting at
least MIN_REJECTED of the negatives (ties: the higher threshold), and the floor that puts the
right entry among the choices most often while offering choices for at most MAX_NEGATIVES_ASKED
of the negatives. The held-out split is never read here.
Copy the result into CALIBRATIONS (bot/matching/matcher.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from benchmarks.bench_match import QUERIES, load_labelled
from benchmarks.common import ROOT
from bot.app import load_content
from bot.matching.matcher import MAX_ALTERNATIVES, MIN_QUERY_LEN, Matcher, Scorer

# Every tuning negative: the goal is 97% on the held-out split, and 108 negatives tuned on
# give an optimistic estimate.
MIN_REJECTED = 1.0
WRONG_COST = 3.0
MAX_NEGATIVES_ASKED = 0.35
THRESHOLDS = np.arange(40.0, 90.5, 0.5)
MARGINS = np.arange(1.0, 10.5, 1.0)
FLOORS = np.arange(20.0, 75.0, 2.5)


def calibrate(scorer: Scorer) -> dict[str, float]:
    """Return the chosen threshold, margin and floor for one scorer, with what they achieve."""
    content = load_content(ROOT / "knowledge", ROOT / "locales")
    matcher = Matcher(content.knowledge, content.normalizer, scorer=scorer)
    labelled = load_labelled(QUERIES)
    scores = matcher.scores([item.text for item in labelled])
    lengths = np.array([len(matcher.normalize(i.text).replace(" ", "")) for i in labelled])
    ids = np.array(matcher.entry_ids)
    order = np.argsort(-scores, axis=1, kind="stable")
    rows = np.arange(len(scores))
    best, second = scores[rows, order[:, 0]], scores[rows, order[:, 1]]
    positive = np.array([bool(i.accepted) for i in labelled])
    right = np.array([ids[o[0]] in i.accepted for o, i in zip(order, labelled, strict=True)])
    chosen: tuple[float, ...] = ()
    for threshold in THRESHOLDS:
        for margin in MARGINS:
            taken = (lengths >= MIN_QUERY_LEN) & (best >= threshold) & (best - second >= margin)
            if np.mean(~taken[~positive]) < MIN_REJECTED:
                continue
            direct = float(np.mean(taken[positive] & right[positive]))
            wrong = float(np.mean(taken[positive] & ~right[positive]))
            key = (direct - WRONG_COST * wrong, direct, wrong, float(threshold), float(margin))
            chosen = max(chosen, key) if chosen else key
    _, direct, wrong, threshold, margin = chosen
    taken = (lengths >= MIN_QUERY_LEN) & (best >= threshold) & (best - second >= margin)
    floor_key: tuple[float, float] = (-1.0, 0.0)
    for floor in FLOORS:
        asked_right, negatives_asked = _asked(scores, order, ids, labelled, taken, floor)
        if negatives_asked <= MAX_NEGATIVES_ASKED:
            floor_key = max(floor_key, (asked_right, float(floor)))
    return {
        "threshold": threshold,
        "margin": margin,
        "floor": floor_key[1],
        "direct": round(direct, 3),
        "wrong": round(wrong, 3),
        "recognised_or_asked": round(direct + floor_key[0], 3),
    }


def _asked(
    scores: npt.NDArray[np.float32],
    order: npt.NDArray[np.intp],
    ids: npt.NDArray[np.str_],
    labelled: list,  # type: ignore[type-arg]
    taken: npt.NDArray[np.bool_],
    floor: float,
) -> tuple[float, float]:
    """Return the share of positives asked with the right choice, and of negatives asked."""
    asked_right = negatives_asked = 0
    positives = sum(bool(i.accepted) for i in labelled)
    for row, item, took, best in zip(scores, labelled, taken, order, strict=True):
        if took:
            continue
        choices = {str(ids[i]) for i in best[:MAX_ALTERNATIVES] if row[i] >= floor}
        if item.accepted:
            asked_right += bool(choices & item.accepted)
        else:
            negatives_asked += bool(choices)
    return asked_right / positives, negatives_asked / (len(labelled) - positives)


def main() -> None:
    for scorer in Scorer:
        print(scorer.value, calibrate(scorer))


if __name__ == "__main__":
    main()
