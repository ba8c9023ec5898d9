"""Learn the order of an entry's fixes within each stage from how walks ended. Pure.

The knowledge base fixes the order of the stages (basic → easy → … → last resort) and, within
a stage, an authored order. Once an entry has at least MIN_OUTCOMES walks on a device that ended
solved or with every fix tried, the fixes of each stage are ordered by a cautious estimate of
their solve rate: a Beta posterior around the stage's pooled rate (PRIOR_WEIGHT imaginary walks
of prior), minus one posterior standard deviation. A fix solved once in one try therefore does
not jump ahead of one solved 40 times in 100; fixes without answers keep their authored order.
A fix never leaves its stage: only runs of consecutive same-stage fixes are reordered.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby

from bot.content.knowledge import Device, Knowledge
from bot.conversation.state import Outcome, OutcomeRecord
from bot.insights.stats import WalkTrace, user_walks, walks

MIN_OUTCOMES = 30  # walks (of one entry on one device) that ended solved or exhausted
PRIOR_WEIGHT = 10.0  # imaginary walks at the stage's pooled solve rate
CAUTION = 1.0  # posterior standard deviations taken off the estimate
WINDOW_DAYS = 90  # history the adapter learns from

LearnedOrder = Mapping[tuple[str, Device], tuple[str, ...]]
_DECIDED = (Outcome.SOLVED, Outcome.EXHAUSTED)


def score(solved: int, tried: int, prior: float, weight: float = PRIOR_WEIGHT) -> float:
    """Return a cautious solve rate: posterior mean minus CAUTION standard deviations."""
    a = solved + weight * prior
    b = tried - solved + weight * (1.0 - prior)
    n = a + b
    if n <= 0:
        return 0.0
    mean = a / n
    sd = math.sqrt(a * b / (n * n * (n + 1.0)))
    return mean - CAUTION * sd


def reorder_within_stages(
    path: tuple[str, ...],
    stage_of: Mapping[str, str],
    tried: Mapping[str, int],
    solved: Mapping[str, int],
) -> tuple[str, ...]:
    """Order each run of same-stage fixes by score; ties keep the authored order."""
    ordered: list[str] = []
    for _, run_iter in groupby(path, key=lambda f: stage_of[f]):
        run = list(run_iter)
        total_tried = sum(tried.get(f, 0) for f in run)
        if total_tried == 0:
            ordered += run
            continue
        prior = sum(solved.get(f, 0) for f in run) / total_tried
        scores = {f: score(solved.get(f, 0), tried.get(f, 0), prior) for f in run}
        ordered += sorted(run, key=lambda f: -scores[f])  # sorted is stable
    return tuple(ordered)


def learned_orders(
    records: Iterable[OutcomeRecord], knowledge: Knowledge, *, min_outcomes: int = MIN_OUTCOMES
) -> dict[tuple[str, Device], tuple[str, ...]]:
    """Return the learned walking order of every entry and device with enough outcomes."""
    tally = Tally()
    tally.add(walks(records))
    return tally.orders(knowledge, min_outcomes=min_outcomes)


class Tally:
    """Per entry and device: decided walks, and how often each fix was tried and solved.

    Built up a user at a time (Store.outcomes_by_user), so that learning from a long history
    needs the counts in memory, not every history line.
    """

    def __init__(self) -> None:
        self.decided: Counter[tuple[str, Device]] = Counter()
        self.tried: dict[tuple[str, Device], Counter[str]] = defaultdict(Counter)
        self.solved: dict[tuple[str, Device], Counter[str]] = defaultdict(Counter)
        self.lines = 0  # history lines the walks were rebuilt from (add_user only)

    def add(self, traces: Iterable[WalkTrace]) -> None:
        """Count these walks."""
        for w in traces:
            key = (w.entry, w.device)
            if w.end in _DECIDED:
                self.decided[key] += 1
            self.tried[key].update(w.tried)
            if w.end is Outcome.SOLVED and w.fix is not None:
                self.solved[key][w.fix] += 1

    def add_user(self, user_records: Sequence[OutcomeRecord]) -> None:
        """Count the walks of one user's history lines (oldest first)."""
        self.lines += len(user_records)
        self.add(user_walks(user_records))

    def orders(
        self, knowledge: Knowledge, *, min_outcomes: int = MIN_OUTCOMES
    ) -> dict[tuple[str, Device], tuple[str, ...]]:
        """Return the learned walking order of every entry and device with enough outcomes."""
        stage_of = {fix_id: fix.stage for fix_id, fix in knowledge.fixes.items()}
        orders: dict[tuple[str, Device], tuple[str, ...]] = {}
        for key, n in self.decided.items():
            entry, device = key
            if n < min_outcomes or entry not in knowledge.entries:
                continue
            authored = knowledge.path_for(entry, device)
            orders[key] = reorder_within_stages(
                authored, stage_of, self.tried[key], self.solved[key]
            )
        return orders


def keeps_stages(knowledge: Knowledge, authored: tuple[str, ...], order: tuple[str, ...]) -> bool:
    """Tell whether order has exactly the authored fixes, each stage in the authored place."""
    if sorted(order) != sorted(authored) or any(f not in knowledge.fixes for f in order):
        return False
    return [knowledge.fixes[f].stage for f in order] == [knowledge.fixes[f].stage for f in authored]


def path_for(
    knowledge: Knowledge, learned: LearnedOrder, entry: str, device: Device
) -> tuple[str, ...]:
    """Return the learned walking order if it still fits the knowledge base, else the authored."""
    authored = knowledge.path_for(entry, device)
    order = learned.get((entry, device))
    if order is None or not keeps_stages(knowledge, authored, order):
        return authored  # nothing learned, or learned from a knowledge base since edited
    return order
