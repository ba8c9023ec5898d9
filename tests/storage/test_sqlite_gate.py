"""Tests of the gate on SqliteStore's connection: one-call work together, transactions alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.conversation.state import UserState
from bot.insights.unmatched import UnmatchedKind, UnmatchedQuery
from bot.storage.queues import Kind, Outgoing
from bot.storage.sqlite import SqliteStore
from bot.storage.sqlite_gate import ConnectionGate


async def test_calls_are_queued_together_without_waiting_for_each_other() -> None:
    gate = ConnectionGate()
    started: list[int] = []
    release = asyncio.Event()

    async def call(n: int) -> int:
        started.append(n)
        await release.wait()
        return n

    calls = [asyncio.create_task(gate.call(lambda n=n: call(n))) for n in range(5)]
    await asyncio.sleep(0)
    assert started == [0, 1, 2, 3, 4]  # all under way at once, in order
    release.set()
    assert await asyncio.gather(*calls) == [0, 1, 2, 3, 4]


async def test_a_call_waits_for_the_open_transaction_and_a_transaction_for_the_last() -> None:
    gate = ConnectionGate()
    order: list[str] = []
    inside = asyncio.Event()
    finish = asyncio.Event()

    async def transaction(name: str) -> None:
        async with gate.transaction():
            order.append(f"{name} begins")
            inside.set()
            await finish.wait()
            order.append(f"{name} ends")

    async def call() -> None:
        order.append("call")

    first = asyncio.create_task(transaction("first"))
    await inside.wait()
    second = asyncio.create_task(transaction("second"))
    waiting = asyncio.create_task(gate.call(call))
    await asyncio.sleep(0.01)
    assert order == ["first begins"]
    finish.set()
    await asyncio.gather(first, second, waiting)
    # The call waiting during the first transaction goes before the second closes the gate.
    assert order == ["first begins", "first ends", "call", "second begins", "second ends"]


async def test_saves_loads_and_transactions_at_once_lose_nothing(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "bot.sqlite3") as store:

        async def turn(user_id: int) -> None:
            state = await store.load(user_id)
            assert state == UserState(user_id)
            saved = UserState(user_id, lang="en")
            rows = await store.save(saved, outgoing=[Outgoing(Kind.SEND, user_id, "hi")])
            await store.outbox_done([row.id for row in rows])
            # Several statements in one transaction, between the others' one-call work.
            await store.record_unmatched(
                UnmatchedQuery(user_id, "hm", UnmatchedKind.NO_MATCH, None, 1.0)
            )

        await asyncio.gather(*(turn(user_id) for user_id in range(1, 201)))
        states = await asyncio.gather(*(store.load(user_id) for user_id in range(1, 201)))
        assert [s.lang for s in states] == ["en"] * 200
        assert await store.user_count() == 200
        assert await store.outbox_pending() == []
        assert len(await store.unmatched_since(0.0)) == 200
