"""The inbox and outbox part of the Store contract: every backend behaves the same."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from bot.conversation.replies import Button
from bot.conversation.state import UserState
from bot.storage.base import Store
from bot.storage.queues import (
    PROCESSED_KEEP_SECONDS,
    Anchor,
    InboxUpdate,
    Kind,
    Outgoing,
)
from tests.support.storage import full_state


def update(update_id: int, text: str = "hi") -> InboxUpdate:
    return InboxUpdate(update_id, f'{{"update_id": {update_id}, "text": "{text}"}}', 1.0)


async def test_inbox_keeps_each_update_once(store: Store) -> None:
    assert await store.inbox_add([update(3), update(1)]) == [3, 1]
    assert await store.inbox_add([update(1), update(2)]) == [2]  # 1 came before
    assert [u.update_id for u in await store.inbox_pending()] == [1, 2, 3]
    assert (await store.inbox_pending())[0] == update(1)


async def test_a_done_update_is_not_kept_again(store: Store) -> None:
    await store.inbox_add([update(7)])
    await store.save(UserState(1), update_id=7)
    assert await store.inbox_pending() == []
    assert await store.inbox_add([update(7)]) == []  # delivered again: skipped
    await store.inbox_add([update(8)])
    await store.inbox_done(8)
    assert await store.inbox_add([update(8)]) == []
    assert await store.inbox_pending() == []


async def test_processed_updates_are_pruned_after_their_retention(store: Store) -> None:
    await store.inbox_add([update(1)])
    await store.inbox_done(1)
    await store.prune(time.time() - 90 * 86400)
    assert await store.inbox_add([update(1)]) == []  # still remembered
    await store.prune(time.time() + PROCESSED_KEEP_SECONDS + 1)
    assert await store.inbox_add([update(1)]) == [1]


async def test_pending_updates_survive_pruning(store: Store) -> None:
    await store.inbox_add([update(1)])
    await store.prune(time.time() + 10 * 86400)
    assert [u.update_id for u in await store.inbox_pending()] == [1]


async def test_save_puts_messages_in_the_outbox_in_order(store: Store) -> None:
    sent = [
        Outgoing(Kind.ANSWER, 5, "ok", callback_id="77", alert=True),
        Outgoing(Kind.EDIT, 5, "<b>step</b>", ((Button("Next", data="n:1"),),), message_id=9),
        Outgoing(Kind.SEND, 5, "写真", ((Button("Apple", url="https://apple.com"),),)),
    ]
    rows = await store.save(UserState(5), outgoing=sent)
    assert [r.message for r in rows] == sent
    pending = await store.outbox_pending()
    assert [r.message for r in pending] == sent
    assert [r.id for r in pending] == sorted(r.id for r in rows)
    more = await store.enqueue([Outgoing(Kind.SEND, 6, "later")])
    assert more[0].id > rows[-1].id
    await store.outbox_done([rows[0].id, rows[1].id])
    assert [r.message.text for r in await store.outbox_pending()] == ["写真", "later"]


async def test_forget_leaves_the_queues_alone(store: Store) -> None:
    await store.inbox_add([update(1)])
    await store.save(UserState(5), outgoing=[Outgoing(Kind.SEND, 5, "bye")])
    await store.forget(5)
    assert len(await store.inbox_pending()) == 1
    assert len(await store.outbox_pending()) == 1


async def test_a_delivered_anchor_becomes_the_walks_message(store: Store) -> None:
    state = full_state()
    assert state.walk is not None
    fresh = state.with_(walk=replace(state.walk, message_id=None))
    anchor = Anchor(42, state.walk.started_at, None)
    rows = await store.save(fresh, outgoing=[Outgoing(Kind.SEND, 42, "step", anchor=anchor)])
    await store.outbox_done([rows[0].id], (anchor, 555))
    walk = (await store.load(42)).walk
    assert walk is not None and walk.message_id == 555
    assert await store.outbox_pending() == []


@pytest.mark.parametrize("moved_on", ["another message", "another walk"])
async def test_a_later_turn_keeps_its_anchor(store: Store, moved_on: str) -> None:
    state = full_state()
    assert state.walk is not None
    anchor = Anchor(42, state.walk.started_at, None)
    if moved_on == "another message":
        later = state  # a tap on message 9001 saved it as the walk's message meanwhile
    else:
        later = state.with_(walk=replace(state.walk, message_id=None, started_at=5.0))
    await store.save(later)
    await store.outbox_done([], (anchor, 555))
    assert await store.load(42) == later


# Several instances on one database: a user's updates, a chat's messages.


async def test_inbox_pending_of_one_user_key_oldest_first(store: Store) -> None:
    mine = [replace(update(i), user_key=10) for i in (5, 2, 9)]
    theirs = [replace(update(i), user_key=11) for i in (3, 4)]
    await store.inbox_add([*mine, *theirs])
    assert [u.update_id for u in await store.inbox_pending(10)] == [2, 5, 9]
    assert [u.update_id for u in await store.inbox_pending(11)] == [3, 4]
    assert (await store.inbox_pending(10))[0] == replace(update(2), user_key=10)
    await store.save(UserState(10), update_id=2)
    assert [u.update_id for u in await store.inbox_pending(10)] == [5, 9]
    assert await store.inbox_pending(12) == []
    assert [u.update_id for u in await store.inbox_pending()] == [3, 4, 5, 9]


async def test_outbox_pending_of_one_chat_in_decided_order(store: Store) -> None:
    def say(chat: int, text: str) -> Outgoing:
        return Outgoing(Kind.SEND, chat, text)

    await store.save(UserState(1), outgoing=[say(1, "a"), say(2, "x")])
    await store.enqueue([say(1, "b"), say(2, "y")])
    await store.save(UserState(1), outgoing=[say(1, "c")])
    first = await store.outbox_pending(1)
    assert [r.message.text for r in first] == ["a", "b", "c"]
    assert [r.message.text for r in await store.outbox_pending(2)] == ["x", "y"]
    assert await store.outbox_pending(3) == []
    await store.outbox_done([first[0].id])
    assert [r.message.text for r in await store.outbox_pending(1)] == ["b", "c"]
    assert len(await store.outbox_pending()) == 4


async def test_one_process_alone_needs_no_lead_and_no_lock_but_postgres_shares(
    store: Store,
) -> None:
    async with store.user_lock(1), store.job_lock("learning"):
        await store.save(UserState(1))
    await store.ping()
    lead = store.leader("prune-history")
    if not store.shared:
        assert lead is None
    else:
        assert lead is not None and await lead.held()
        await lead.close()
