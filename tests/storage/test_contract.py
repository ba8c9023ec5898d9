"""The Store contract: every backend (memory, SQLite) behaves the same."""

from __future__ import annotations

import asyncio

import pytest

from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.insights.unmatched import NONE_OF_THESE, UnmatchedKind, UnmatchedQuery
from bot.storage.base import Store
from tests.support.storage import by_user, full_state, question, record, subscription


async def test_unknown_user_gets_fresh_state(store: Store) -> None:
    assert await store.load(5) == UserState(5)
    assert await store.history(5) == []
    assert await store.user_count() == 0


async def test_round_trip_keeps_every_field(store: Store) -> None:
    state = full_state()
    await store.save(state)
    loaded = await store.load(42)
    assert loaded == state
    assert loaded.walk is not None and loaded.walk.path == ("restart", "sign-out", "reset-keychain")
    assert isinstance(loaded.device, Device)


async def test_save_overwrites_and_can_clear_fields(store: Store) -> None:
    await store.save(full_state())
    cleared = UserState(42, lang="ja")
    await store.save(cleared)
    assert await store.load(42) == cleared
    assert await store.user_count() == 1


async def test_saved_state_does_not_alias_callers_extra(store: Store) -> None:
    state = UserState(1, extra={"k": 1})
    await store.save(state)
    state.extra["k"] = 2
    assert (await store.load(1)).extra == {"k": 1}


async def test_history_is_oldest_first_and_per_user(store: Store) -> None:
    await store.save(UserState(1), [record(1, 30.0, Outcome.STARTED)])
    await store.save(UserState(2), [record(2, 15.0)])
    await store.save(UserState(1), [record(1, 10.0), record(1, 20.0, Outcome.SOLVED)])
    assert [(r.at, r.outcome) for r in await store.history(1)] == [
        (10.0, Outcome.NEXT),
        (20.0, Outcome.SOLVED),
        (30.0, Outcome.STARTED),
    ]
    assert await store.history(2) == [record(2, 15.0)]


async def test_same_time_lines_keep_insertion_order(store: Store) -> None:
    lines = [record(1, 5.0, o) for o in (Outcome.STARTED, Outcome.NEXT, Outcome.SOLVED)]
    await store.save(UserState(1), lines)
    assert await store.history(1) == lines


async def test_history_keeps_a_missing_fix(store: Store) -> None:
    line = OutcomeRecord(1, "sync-stuck", Device.WINDOWS, None, Outcome.EXHAUSTED, 1.0)
    await store.save(UserState(1), [line])
    assert await store.history(1) == [line]


async def test_outcomes_since_spans_users_from_the_bound(store: Store) -> None:
    await store.save(UserState(1), [record(1, 10.0), record(1, 30.0)])
    await store.save(UserState(2), [record(2, 20.0), record(2, 5.0)])
    assert await store.outcomes_since(20.0) == [record(2, 20.0), record(1, 30.0)]
    assert await store.outcomes_since(31.0) == []
    assert len(await store.outcomes_since(0.0)) == 4


async def test_outcomes_by_user_gives_each_users_lines_together_oldest_first(
    store: Store,
) -> None:
    await store.save(UserState(1), [record(1, 30.0), record(1, 10.0), record(1, 20.0)])
    await store.save(UserState(2), [record(2, 15.0), record(2, 5.0)])
    await store.save(UserState(3), [record(3, 1.0)])
    groups = {lines[0].user_id: lines for lines in await by_user(store, 5.0)}
    assert groups == {
        1: [record(1, 10.0), record(1, 20.0), record(1, 30.0)],
        2: [record(2, 5.0), record(2, 15.0)],
    }
    since = [line for lines in await by_user(store, 12.0) for line in lines]
    assert sorted(since, key=lambda r: r.at) == await store.outcomes_since(12.0)
    assert await by_user(store, 31.0) == []


async def test_history_of_another_user_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="user 1"):
        await store.save(UserState(1), [record(1, 1.0), record(2, 2.0)])
    assert await store.user_count() == 0
    assert await store.outcomes_since(0.0) == []


async def test_forget_deletes_state_and_history(store: Store) -> None:
    await store.save(full_state(1), [record(1, 1.0)])
    await store.save(full_state(2), [record(2, 2.0)])
    await store.forget(1)
    assert await store.load(1) == UserState(1)
    assert await store.history(1) == []
    assert await store.history(2) == [record(2, 2.0)]
    assert await store.user_count() == 1
    await store.forget(12345)  # unknown: nothing to do, no error


async def test_prune_deletes_only_older_lines(store: Store) -> None:
    await store.save(UserState(1), [record(1, 10.0), record(1, 20.0)])
    await store.save(UserState(2), [record(2, 5.0), record(2, 25.0)])
    assert await store.prune(20.0) == 2
    assert await store.outcomes_since(0.0) == [record(1, 20.0), record(2, 25.0)]
    assert await store.prune(20.0) == 0
    assert await store.user_count() == 2  # states stay


async def test_user_count(store: Store) -> None:
    for user_id in (1, 2, 3, 2):
        await store.save(UserState(user_id))
    assert await store.user_count() == 3


async def test_concurrent_users(store: Store) -> None:
    users = range(1000, 1500)

    async def conversation(user_id: int) -> None:
        state = await store.load(user_id)
        await store.save(state.with_(lang="en"), [record(user_id, 1.0, Outcome.STARTED)])
        state = await store.load(user_id)
        await store.save(state.with_(device=Device.WINDOWS), [record(user_id, 2.0)])

    await asyncio.gather(*(conversation(u) for u in users))
    assert await store.user_count() == len(users)
    for user_id in users:
        assert await store.load(user_id) == UserState(user_id, lang="en", device=Device.WINDOWS)
        assert [r.at for r in await store.history(user_id)] == [1.0, 2.0]


async def test_close_twice_is_harmless(store: Store) -> None:
    await store.close()
    await store.close()


async def test_unmatched_questions_round_trip_oldest_first(store: Store) -> None:
    await store.save(UserState(1))
    await store.save(UserState(2))
    later = UnmatchedQuery(2, "写真が消えた", UnmatchedKind.DID_YOU_MEAN, None, 20.0)
    await store.record_unmatched(later)
    await store.record_unmatched(question(1, 10.0))
    assert await store.unmatched_since(0) == [question(1, 10.0), later]
    assert await store.unmatched_since(15.0) == [later]


async def test_unmatched_choice_updates_the_same_question(store: Store) -> None:
    await store.save(UserState(1))
    await store.record_unmatched(question(1, 10.0))
    await store.record_unmatched(question(1, 10.0, NONE_OF_THESE))
    await store.record_unmatched(question(1, 10.0, "cannot_connect_icloud"))
    await store.record_unmatched(question(1, 11.0))  # another question
    assert await store.unmatched_since(0) == [
        question(1, 10.0, "cannot_connect_icloud"),
        question(1, 11.0),
    ]


async def test_forget_and_prune_delete_unmatched_questions(store: Store) -> None:
    for user in (1, 2):
        await store.save(UserState(user))
        await store.record_unmatched(question(user, 10.0 * user))
    await store.record_unmatched(question(1, 30.0))
    await store.forget(1)
    assert await store.unmatched_since(0) == [question(2, 20.0)]
    await store.save(UserState(3))
    await store.record_unmatched(question(3, 40.0))
    await store.prune(older_than=25.0)
    assert await store.unmatched_since(0) == [question(3, 40.0)]


async def test_subscriptions_round_trip_oldest_first(store: Store) -> None:
    for user in (1, 2, 3):
        await store.save(UserState(user))
    assert await store.subscriptions() == []
    await store.subscribe(subscription(2, 20.0, ("iCloudメール", "iCloud Drive")))
    await store.subscribe(subscription(1, 30.0))
    await store.subscribe(subscription(3, 10.0, ()))
    assert await store.subscriptions() == [
        subscription(3, 10.0, ()),
        subscription(2, 20.0, ("iCloudメール", "iCloud Drive")),
        subscription(1, 30.0),
    ]


async def test_subscribing_again_replaces_and_unsubscribe_spares_a_newer_one(
    store: Store,
) -> None:
    await store.save(UserState(1))
    old, new = subscription(1, 10.0), subscription(1, 20.0, ("App Store",))
    await store.subscribe(old)
    await store.subscribe(new)
    assert await store.subscriptions() == [new]
    assert await store.unsubscribe(old) is False  # the poller read it before the user re-tapped
    assert await store.subscriptions() == [new]
    assert await store.unsubscribe(new) is True
    assert await store.unsubscribe(new) is False
    assert await store.subscriptions() == []


async def test_forget_deletes_the_subscription(store: Store) -> None:
    for user in (1, 2):
        await store.save(UserState(user))
        await store.subscribe(subscription(user, float(user)))
    await store.forget(1)
    assert await store.subscriptions() == [subscription(2, 2.0)]


async def test_support_posts_are_linked_forgotten_and_pruned(store: Store) -> None:
    for user in (1, 2):
        await store.save(UserState(user))
    await store.link_support_message(-100, 10, 1, 5.0)
    await store.link_support_message(-100, 11, 1, 50.0)
    await store.link_support_message(-100, 12, 2, 50.0)
    await store.link_support_message(-200, 10, 2, 50.0)  # another chat, same message id
    assert await store.support_user(-100, 10) == 1
    assert await store.support_user(-200, 10) == 2
    assert await store.support_user(-100, 99) is None
    await store.prune(20.0)
    assert await store.support_user(-100, 10) is None
    assert await store.support_user(-100, 11) == 1
    await store.forget(1)
    assert await store.support_user(-100, 11) is None
    assert await store.support_user(-100, 12) == 2
