"""The support group's budgets: a burst, then a steady rate; one refusal notice per streak."""

from __future__ import annotations

from bot.channels.telegram.limits import MAX_TRACKED, PostBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_post_per_interval() -> None:
    clock = Clock()
    budget = PostBudget(burst=3, every=10.0, clock=clock)
    assert [budget.take(1) for _ in range(4)] == [True, True, True, False]
    assert budget.take(2)  # another user has a budget of their own
    clock.now += 9.0
    assert not budget.take(1)
    clock.now += 1.5
    assert budget.take(1)
    assert not budget.take(1)
    clock.now += 1000.0
    assert [budget.take(1) for _ in range(4)] == [True, True, True, False]  # never above burst


def test_the_refusal_is_noticed_once_per_streak() -> None:
    clock = Clock()
    budget = PostBudget(burst=1, every=10.0, clock=clock)
    assert budget.take(1)
    assert not budget.take(1) and budget.first_refusal(1)
    assert not budget.take(1) and not budget.first_refusal(1)
    clock.now += 10.0
    assert budget.take(1)
    assert not budget.take(1) and budget.first_refusal(1)


def test_memory_is_bounded() -> None:
    clock = Clock()
    budget = PostBudget(burst=2, every=1.0, clock=clock)
    for key in range(MAX_TRACKED * 2):
        budget.take(key)
        clock.now += 0.001
    assert len(budget) <= MAX_TRACKED
