"""The decision rule on its own: when a best score is taken, for an entry or a topic."""

from __future__ import annotations

import numpy as np
import pytest

from bot.matching.decision import (
    MIN_QUERY_LEN,
    MIN_TOPIC_LEN,
    Calibration,
    decide,
    needed_length,
)

RULE = Calibration(threshold=50.0, margin=2.0, floor=30.0, far_threshold=40.0, far_margin=10.0)
IDS = ("entry_a", "entry_b", "topic_c")
TOPICS = frozenset({"topic_c"})


@pytest.mark.parametrize(
    ("best", "runner_up", "clear"),
    [
        (60.0, 57.0, True),  # the main tier: sure and ahead
        (60.0, 59.0, False),  # sure but a rival is as close as that
        (45.0, 34.0, True),  # the far tier: lower, but far ahead of every other
        (45.0, 36.0, False),  # lower and only 9 ahead
        (39.0, 0.0, False),  # below both thresholds however far ahead
    ],
)
def test_a_best_score_is_clear_in_either_tier(best: float, runner_up: float, clear: bool) -> None:
    assert RULE.clear(best, runner_up) is clear


def test_without_a_far_tier_only_the_main_one_counts() -> None:
    plain = Calibration(threshold=50.0, margin=2.0, floor=30.0)
    assert not plain.clear(45.0, 0.0)
    assert plain.clear(50.0, 48.0)


def row(*scores: float) -> np.ndarray:
    return np.array(scores, dtype=np.float32)


def test_a_topic_needs_fewer_characters_than_an_entry() -> None:
    assert needed_length(topic=True) == MIN_TOPIC_LEN < MIN_QUERY_LEN == needed_length(topic=False)
    short = MIN_TOPIC_LEN + 1
    assert decide(RULE, IDS, TOPICS, "t", short, row(10, 20, 80)).topic == "topic_c"
    taken = decide(RULE, IDS, TOPICS, "t", short, row(80, 20, 10))
    assert taken.found is None and taken.alternatives[0].entry == "entry_a"
    assert decide(RULE, IDS, TOPICS, "t", MIN_QUERY_LEN, row(80, 20, 10)).entry == "entry_a"
    assert decide(RULE, IDS, TOPICS, "t", MIN_TOPIC_LEN - 1, row(10, 20, 80)).found is None
