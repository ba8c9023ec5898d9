"""How well the calibration generalises: k-fold cross-validation on the TUNING split only.

    python -m benchmarks.crossval_match [--folds 5] [--scorer blend] [--misses]

Each scorer scores the tuning queries once; then, per fold, benchmarks.calibrate_match chooses
the threshold, margin and floor on the other folds and the fold is answered with that rule.
The folds' answers together estimate what a rule chosen on labelled queries achieves on queries
it never saw, without reading the held-out split (which is never read here). Beside it, "plain"
answers every tuning query with the shipped CALIBRATIONS (chosen on all of them: optimistic).
Folds take every k-th query, so each holds some of every entry's group.
--misses lists the cross-validated failures (tuning queries only), to guide new patterns.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence

import numpy as np

from benchmarks.calibrate_match import Scored, choose, outcomes, score
from bot.matching.matcher import CALIBRATIONS, Scorer

FOLDS = 5
FAILURES = frozenset({"wrong", "asked", "asked_right", "missed", "taken"})


def summary(results: Sequence[str]) -> dict[str, float]:
    """Return the shares of the bench's table from per-query outcomes."""
    counts = Counter(results)
    positives = sum(counts[k] for k in ("matched", "wrong", "asked_right", "asked", "missed"))
    negatives = sum(counts[k] for k in ("rejected", "rejected_asked", "taken"))
    return {
        "recognised": round(counts["matched"] / max(positives, 1), 4),
        "recognised_or_asked": round(
            (counts["matched"] + counts["asked_right"]) / max(positives, 1), 4
        ),
        "wrong": round(counts["wrong"] / max(positives, 1), 4),
        "negatives_rejected": round(
            (counts["rejected"] + counts["rejected_asked"]) / max(negatives, 1), 4
        ),
    }


def crossval(data: Scored, folds: int = FOLDS) -> tuple[list[str], list[dict[str, float]]]:
    """Return each query's outcome under the rule chosen without its fold, and the rules."""
    results = [""] * len(data.labelled)
    rules = []
    everyone = np.arange(len(data.labelled))
    for fold in range(folds):
        held = everyone[everyone % folds == fold]
        rule = choose(data.subset(everyone[everyone % folds != fold]))
        rules.append(rule)
        answered = outcomes(data.subset(held), rule["threshold"], rule["margin"], rule["floor"])
        for row, outcome in zip(held, answered, strict=True):
            results[row] = outcome
    return results, rules


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--scorer", choices=[s.value for s in Scorer], action="append")
    parser.add_argument("--misses", action="store_true", help="list the cross-validated failures")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    scorers = [Scorer(s) for s in args.scorer] if args.scorer else list(Scorer)
    report = {}
    for scorer in scorers:
        data = score(scorer)
        rule = CALIBRATIONS[scorer]
        plain = outcomes(data, rule.threshold, rule.margin, rule.floor)
        crossed, rules = crossval(data, args.folds)
        report[scorer.value] = {
            "plain": summary(plain),
            "crossval": summary(crossed),
            "rules": [(r["threshold"], r["margin"], r["floor"]) for r in rules],
        }
        if args.misses:
            order = data.order
            for i, outcome in enumerate(crossed):
                if outcome in FAILURES:
                    item = data.labelled[i]
                    top = ", ".join(f"{data.ids[j]} {data.scores[i, j]:.0f}" for j in order[i, :3])
                    want = "/".join(sorted(item.accepted)) or "-"
                    print(f"{scorer.value:8} {outcome:7} want {want:28} got {top} | {item.text}")
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{'scorer':9}{'split':10}{'recognised':>11}{'rec/asked':>11}{'wrong':>8}{'neg rej':>9}")
    for name, row in report.items():
        for split in ("plain", "crossval"):
            s = row[split]
            print(
                f"{name:9}{split:10}{s['recognised']:>11.1%}{s['recognised_or_asked']:>11.1%}"
                f"{s['wrong']:>8.1%}{s['negatives_rejected']:>9.1%}"
            )
        print(f"{'':9}fold rules (threshold, margin, floor): {row['rules']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
