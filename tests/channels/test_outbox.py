"""The outbox sender: order per chat, retries, refusals, restarts, the walk's anchor.

A real SQLite file; the channel is the port (bot/channels/base.py) with scripted failures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from bot.channels.base import DeliveryError, MessageLimits
from bot.channels.outbox import Outbox
from bot.conversation.replies import Reply
from bot.storage.locks import UserLocks
from bot.storage.queues import Anchor, Kind, Outgoing
from bot.storage.sqlite import SqliteStore
from tests.support.storage import full_state


@dataclass
class FlakyChannel:
    """The channel port: `failures` raise before calls succeed; refused chats are blocked."""

    limits: MessageLimits = field(default_factory=MessageLimits)
    failures: dict[int, list[DeliveryError]] = field(default_factory=dict)  # per chat
    refuse: set[int] = field(default_factory=set)
    sent: list[tuple[str, int | str, str | None]] = field(default_factory=list)
    next_id: int = 100

    def _maybe_fail(self, chat_id: int) -> None:
        if chat_id in self.refuse:
            raise DeliveryError("Forbidden: bot was blocked by the user", permanent=True)
        if self.failures.get(chat_id):
            raise self.failures[chat_id].pop(0)

    async def send(self, chat_id: int, reply: Reply) -> int:
        self._maybe_fail(chat_id)
        self.next_id += 1
        self.sent.append(("send", chat_id, reply.text))
        return self.next_id

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> int | None:
        self._maybe_fail(chat_id)
        self.sent.append(("edit", chat_id, reply.text))
        return message_id

    async def answer(self, callback_id: str, text: str | None, alert: bool) -> None:
        self._maybe_fail(0)
        self.sent.append(("answer", callback_id, text))


def transient(retry_after: float | None = None) -> DeliveryError:
    return DeliveryError("NetworkError: Bad Gateway", permanent=False, retry_after=retry_after)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with await SqliteStore.open(tmp_path / "bot.sqlite3") as opened:
        yield opened


def send(chat_id: int, text: str) -> Outgoing:
    return Outgoing(Kind.SEND, chat_id, text)


async def settle(outbox: Outbox, timeout: float = 10.0) -> None:
    """Wait until nothing waits; then stop the sender (as at shutdown)."""
    try:
        async with asyncio.timeout(timeout):
            while outbox.waiting:
                await asyncio.sleep(0.02)
    finally:
        await outbox.close()


async def test_a_passing_failure_is_retried_and_the_chat_keeps_its_order(
    store: SqliteStore,
) -> None:
    channel = FlakyChannel(failures={1: [transient(), transient(0.05)]})
    outbox = Outbox(store, channel, UserLocks())
    assert await outbox.say([send(1, "one")])  # failed twice: retried in the background
    await outbox.say([send(1, "two"), send(2, "other chat")])
    assert channel.sent == [("send", 2, "other chat")]  # chat 1 waits behind "one"
    await settle(outbox)
    assert [s[2] for s in channel.sent if s[1] == 1] == ["one", "two"]
    assert await store.outbox_pending() == []


async def test_a_refusal_is_dropped_with_one_log_line(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    channel = FlakyChannel(refuse={7})
    outbox = Outbox(store, channel, UserLocks())
    with caplog.at_level(logging.INFO, logger="bot.channels.outbox"):
        assert not await outbox.say([send(7, "secret words")])
    await settle(outbox)
    assert await store.outbox_pending() == []
    assert [r.getMessage() for r in caplog.records] == [
        "dropped a send to chat 7: Forbidden: bot was blocked by the user"
    ]


async def test_an_old_callback_answer_is_dropped_not_retried(store: SqliteStore) -> None:
    channel = FlakyChannel(failures={0: [transient(retry_after=30.0)]})
    outbox = Outbox(store, channel, UserLocks())
    await outbox.say([Outgoing(Kind.ANSWER, 1, None, callback_id="q")])
    await settle(outbox, 1.0)  # 30 s would pass Telegram's 15 s: given up at once
    assert channel.sent == []
    assert await store.outbox_pending() == []


async def test_what_a_crash_left_is_delivered_on_the_next_start(store: SqliteStore) -> None:
    await store.enqueue([send(1, "left"), send(1, "behind")])
    channel = FlakyChannel()
    outbox = Outbox(store, channel, UserLocks())
    assert await outbox.resume() == 2
    await outbox.submit(await store.enqueue([send(1, "new")]))  # a turn right after the start
    await settle(outbox)
    assert [s[2] for s in channel.sent] == ["left", "behind", "new"]
    assert await store.outbox_pending() == []


async def test_a_sent_walk_message_becomes_the_walks_anchor(store: SqliteStore) -> None:
    state = full_state()
    assert state.walk is not None
    state = state.with_(walk=replace(state.walk, message_id=None))
    anchor = Anchor(state.user_id, state.walk.started_at if state.walk else 0.0, None)
    rows = await store.save(state, outgoing=[Outgoing(Kind.SEND, 42, "step", anchor=anchor)])
    channel = FlakyChannel(failures={42: [transient()]})
    outbox = Outbox(store, channel, UserLocks())
    await outbox.submit(rows)
    await settle(outbox)
    walk = (await store.load(42)).walk
    assert walk is not None and walk.message_id == channel.next_id
