"""Two `serve` instances on one PostgreSQL behind Telegram's webhook deliveries; one is killed.

The fake Bot API delivers as Telegram does (one outstanding update per chat, redelivery on a
failure), round robin over both instances (the load balancer). A burst of users paste an
error, choose their device and go to the next fix; one instance gets kill -9 in the middle.
Every user must be answered, in order, once per update (but for what the killed instance had
delivered in its last instant and not yet noted: sent again), and every walk must stand where
the user left it, in the database and on the screen.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bot.channels.telegram.processor import CONNECTION_POOL_SIZE
from tests.support.botproc import TOKEN
from tests.support.fakebotapi import FakeBotApi
from tests.support.serveproc import ServeProcess

pytestmark = pytest.mark.slow

EN_ERROR = "There was an error connecting to the Apple ID server."
USERS = range(70_000, 70_060)
STEP_TIMEOUT = 60.0  # seconds one reply may take, kill and takeover included


@pytest.fixture
async def cluster_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(
        token=TOKEN, multiple_webhook_urls=True, webhook_timeout=5.0, webhook_retry_delay=0.2
    ) as api:
        yield api


def shown(api: FakeBotApi, user: int) -> str:
    """Every message the user sees (a reply sent twice is two messages)."""
    return "\n".join(message.text for message in api.chat(user))


def showing(api: FakeBotApi, user: int, step: str) -> list[int]:
    """The ids of the user's messages that show this step."""
    return [m.message_id for m in api.chat(user) if step in m.text]


async def walk(api: FakeBotApi, user: int) -> None:
    """Paste, choose the device, go to the next fix: each step waits for its answer."""
    api.push_text(user, EN_ERROR)
    (question,) = await api.wait_for_messages(user, 1, STEP_TIMEOUT)
    api.push_button(user, question.button_texts[0])  # the first device
    await api.wait_for(
        lambda: "Step 1/" in shown(api, user), STEP_TIMEOUT, what=f"user {user} at step 1"
    )
    api.push_button(user, "➡️ Next fix")
    await api.wait_for(
        lambda: "Step 2/" in shown(api, user), STEP_TIMEOUT, what=f"user {user} at step 2"
    )


async def queues(url: str) -> str:
    """What waits in the inbox and the outbox (for a failure's message)."""
    conn = await asyncpg.connect(url)
    try:
        inbox = await conn.fetch(
            "SELECT update_id, user_key, received_at FROM inbox WHERE done_at IS NULL"
        )
        outbox = await conn.fetch("SELECT id, chat_id, message FROM outbox")
    finally:
        await conn.close()
    return f"inbox pending: {[tuple(r) for r in inbox]}\noutbox: {[tuple(r) for r in outbox]}"


async def test_two_instances_one_killed_every_user_answered_once_in_order(
    cluster_api: FakeBotApi, tmp_path: Path, pg_url: str
) -> None:
    api = cluster_api
    env = {"BOT_DATABASE_URL": pg_url, "LOG_LEVEL": "INFO"}
    first = await ServeProcess(api, tmp_path / "a", "a", **env).start()
    second = await ServeProcess(api, tmp_path / "b", "b", **env).start()
    try:
        assert len(api.webhook.urls) == 2
        walks = asyncio.gather(*(walk(api, user) for user in USERS))
        # In the middle: once a third of the users have had their first answer.
        await api.wait_for(lambda: sum(1 for u in USERS if api.chat(u)) >= len(USERS) // 3, 30.0)
        delivered_before = api.webhook.deliveries
        await first.kill()
        done_at_kill = {user for user in USERS if "Step 2/" in shown(api, user)}
        try:
            await asyncio.wait_for(walks, STEP_TIMEOUT * 3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await queues(pg_url)}\n{second.log()[-4000:]}") from None
        await api.wait_idle(timeout=30.0, quiet=1.0)
        assert delivered_before > 0
    finally:
        if first.proc is not None and first.proc.returncode is None:
            await first.kill()
        stop_code = await second.stop()
    assert stop_code == 0, second.log()[-3000:]
    assert done_at_kill != set(USERS)

    # On the screen: one message per user, showing the second fix; once per update but for
    # what the killed instance delivered in its last instant (at most its requests in flight).
    sends = Counter(c.params["chat_id"] for c in api.calls("sendMessage"))
    twice = {user for user in USERS if sends[user] > 1 or len(api.chat(user)) > 1}
    assert twice.isdisjoint(done_at_kill)
    assert len(twice) <= CONNECTION_POOL_SIZE, twice
    assert all(sends[user] <= 2 for user in USERS)
    for user in USERS:
        assert "Step 2/" in shown(api, user)

    # In the database: every walk at its second fix on that message; nothing left behind.
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT user_id, state FROM users ORDER BY user_id")
        assert [r["user_id"] for r in rows] == list(USERS)
        for row in rows:
            walk_state = json.loads(row["state"])["walk"]
            assert walk_state["position"] == 1, row
            assert showing(api, row["user_id"], "Step 2/") == [walk_state["message_id"]]
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE done_at IS NULL") == 0
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 3 * len(USERS)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()
    assert TOKEN not in first.log() + second.log()
    # The daily pruning ran once, in the instance that took its lead (the first to start).
    assert "pruned 0 history line(s)" in first.log()
    assert "pruned" not in second.log()


async def test_an_update_that_cannot_be_kept_is_500_then_kept_when_the_database_works(
    cluster_api: FakeBotApi, tmp_path: Path, pg_url: str
) -> None:
    api = cluster_api
    serve = await ServeProcess(api, tmp_path, BOT_DATABASE_URL=pg_url).start()
    conn = await asyncpg.connect(pg_url)
    try:
        assert "now leads prune-history" in serve.log()  # alone: it leads the daily pruning
        await conn.execute("ALTER TABLE inbox RENAME TO inbox_away")  # every insert fails
        api.push_text(70_900, EN_ERROR)
        await api.wait_for(lambda: api.webhook.failures >= 2, 20.0, what="refused deliveries")
        assert not api.chat(70_900)
        assert "Wrong response from the webhook: 500" in str(api.webhook.info())
        await conn.execute("ALTER TABLE inbox_away RENAME TO inbox")
        await api.wait_for_messages(70_900, 1, 20.0)  # delivered again, kept, answered
        await api.wait_idle(timeout=10.0, quiet=0.5)
        assert len(api.chat(70_900)) == 1
    finally:
        await conn.close()
        assert await serve.stop() == 0
    assert "could not keep update" in serve.log() and "Traceback" not in serve.log()
