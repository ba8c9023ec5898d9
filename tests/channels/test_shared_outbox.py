"""Several senders on one PostgreSQL outbox: a chat's messages in order, each sent once.

Two PostgresStores on one database stand for two instances; the channel is the port with
scripted failures (tests/channels/test_outbox.py's FlakyChannel).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.channels.shared_outbox import SharedOutbox
from bot.storage.locks import UserLocks
from bot.storage.postgres import PostgresStore
from bot.storage.queues import Kind, Outgoing
from tests.channels.test_outbox import FlakyChannel, transient


def say(chat: int, text: str) -> Outgoing:
    return Outgoing(Kind.SEND, chat, text)


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    async with await PostgresStore.open(pg_url) as one, await PostgresStore.open(pg_url) as two:
        yield one, two


def sender(store: PostgresStore, channel: FlakyChannel) -> SharedOutbox:
    return SharedOutbox(store, channel, UserLocks(store.user_lock))


async def test_a_second_sender_delivers_what_the_first_is_retrying_first_and_once(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    one, two = stores
    first = FlakyChannel(failures={5: [transient(retry_after=30.0)]})
    second = FlakyChannel()
    a, b = sender(one, first), sender(two, second)
    try:
        assert await a.submit(await one.enqueue([say(5, "1"), say(5, "2")]))
        assert first.sent == []  # waiting 30 s to try "1" again
        # The chat's next turn on the other instance: what waits goes first, in order.
        assert await b.submit(await two.enqueue([say(5, "3")]))
        assert second.sent == [("send", 5, "1"), ("send", 5, "2"), ("send", 5, "3")]
        assert await one.outbox_pending() == []
    finally:
        await a.close()
        await b.close()
    assert first.sent == []  # nothing left for the first one to send twice


async def test_senders_racing_on_one_chat_keep_its_order_and_send_each_once(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    one, two = stores
    sent: list[tuple[str, int | str, str | None]] = []  # both channels, in the order sent
    channels = (FlakyChannel(sent=sent), FlakyChannel(sent=sent))
    senders = (sender(one, channels[0]), sender(two, channels[1]))
    try:
        for n in range(20):  # each message submitted by one instance and swept by the other
            store = (one, two)[n % 2]
            rows = await store.enqueue([say(7, str(n))])
            await asyncio.gather(senders[n % 2].submit(rows), senders[1 - n % 2].resume())
        await asyncio.gather(*(s.resume() for s in senders))
        for _ in range(50):  # bounded: the background deliveries settle within 5 s
            if not await one.outbox_pending():
                break
            await asyncio.sleep(0.1)
    finally:
        for s in senders:
            await s.close()
    assert [c[2] for c in sent] == [str(n) for n in range(20)]  # each once, in order
