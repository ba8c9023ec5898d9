"""UserLocks: one user's blocks run one at a time and in order; other users are not held up."""

from __future__ import annotations

import asyncio

from bot.storage.locks import UserLocks


async def test_one_users_blocks_run_one_at_a_time_in_arrival_order() -> None:
    locks = UserLocks()
    events: list[str] = []

    async def turn(name: str, user: int) -> None:
        async with locks.hold(user):
            events.append(f"{name} in")
            await asyncio.sleep(0.01)
            events.append(f"{name} out")

    await asyncio.gather(*(turn(n, 1) for n in "abc"))
    assert events == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_other_users_run_meanwhile_and_idle_locks_are_forgotten() -> None:
    locks = UserLocks()
    inside = asyncio.Event()
    release = asyncio.Event()

    async def hold_user_one() -> None:
        async with locks.hold(1):
            inside.set()
            await release.wait()

    holder = asyncio.create_task(hold_user_one())
    await inside.wait()
    async with asyncio.timeout(1), locks.hold(2):
        assert len(locks) == 2
    release.set()
    await holder
    assert len(locks) == 0


async def test_a_failing_block_releases_the_lock() -> None:
    locks = UserLocks()
    try:
        async with locks.hold(1):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with asyncio.timeout(1), locks.hold(1):
        assert len(locks) == 1
    assert len(locks) == 0
