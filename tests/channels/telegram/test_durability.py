"""Nothing lost: the real bot process against a fake Bot API that fails as Telegram can.

The inbox (an update is kept before it is confirmed, handled once) and the outbox (a reply is
saved with the state and delivered until Telegram takes it or refuses it for good).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.channels.telegram.processor import CONNECTION_POOL_SIZE
from tests.support.botproc import BotProcess
from tests.support.disk import fill, small_filesystem
from tests.support.fakebotapi import FakeBotApi

pytestmark = pytest.mark.slow

EN_ERROR = "There was an error connecting to the Apple ID server."
OTHER_ERROR = "Verification failed"


def answers(api: FakeBotApi, user: int) -> int:
    """Messages the bot sent the user (each paste gets one: the device question)."""
    return len(api.chat(user))


async def paste_and_wait(api: FakeBotApi, user: int, timeout: float = 15.0) -> None:
    api.push_text(user, EN_ERROR)
    await api.wait_for_messages(user, 1, timeout)


KILL_AFTER = 10


async def test_kill_9_mid_burst_then_every_user_answered_once(
    api: FakeBotApi, tmp_path: Path
) -> None:
    users = range(50_000, 50_300)
    proc = await BotProcess(api, tmp_path).start()
    for user in users:
        api.push_text(user, EN_ERROR)
    # Killed once the burst is under way: on the first replies, not after a fixed time (a bot
    # fast enough answers everyone within any fixed time).
    await api.wait_for(
        lambda: sum(1 for user in users if api.chat(user)) >= KILL_AFTER, 30.0, what="no replies"
    )
    await proc.kill()
    answered_before = {user for user in users if api.chat(user)}
    confirmed = api.confirmed_update_ids
    # Whatever was confirmed is in the inbox (kept before the next getUpdates).
    with sqlite3.connect(proc.db_path) as db:
        kept = {row[0] for row in db.execute("SELECT update_id FROM inbox")}
    assert confirmed <= kept
    assert len(answered_before) < len(users)  # killed mid-burst

    proc2 = await BotProcess(api, tmp_path).start()
    try:
        await api.wait_for(
            lambda: all(api.chat(user) for user in users),
            60.0,
            what=lambda: f"{sum(1 for u in users if not api.chat(u))} users still unanswered",
        )
        await api.wait_idle(timeout=20.0)
        assert api.pending_updates == 0
    finally:
        assert await proc2.stop() == 0
    assert all(answers(api, user) >= 1 for user in users)  # nobody lost
    # Exactly once, but for the replies Telegram took in the instant before the kill, before
    # the outbox could note it: those are sent again (at least once; the Bot API has no way
    # to ask whether a message went out). At most the requests that can be in flight.
    twice = {user for user in users if answers(api, user) > 1}
    assert twice <= answered_before
    assert len(twice) <= CONNECTION_POOL_SIZE
    assert all(answers(api, user) <= 2 for user in users)


@pytest.mark.parametrize("status", [500, 502])
async def test_a_server_error_on_send_is_retried(
    api: FakeBotApi, bot: BotProcess, status: int
) -> None:
    api.fail_next("sendMessage", status=status)
    await paste_and_wait(api, 60_001)
    await api.wait_idle()
    assert answers(api, 60_001) == 1
    assert [e.status for e in api.errors] == [status]


async def test_a_reset_connection_on_send_is_retried(api: FakeBotApi, bot: BotProcess) -> None:
    api.reset_next("sendMessage")
    await paste_and_wait(api, 60_002)
    await api.wait_idle()
    assert answers(api, 60_002) == 1
    assert "retrying" in bot.log()


async def test_a_slow_answer_past_the_timeout_is_retried(api: FakeBotApi, bot: BotProcess) -> None:
    api.slow_next("sendMessage", 7.0)  # the client gives up reading after 5 s
    await paste_and_wait(api, 60_003, timeout=30.0)
    assert answers(api, 60_003) == 1


async def test_four_flood_limits_in_a_row_are_waited_out(api: FakeBotApi, bot: BotProcess) -> None:
    api.fail_next("sendMessage", n=4, retry_after=1)
    await paste_and_wait(api, 60_004, timeout=20.0)
    assert answers(api, 60_004) == 1
    assert [e.status for e in api.errors] == [429] * 4


async def test_a_long_flood_limit_is_honoured(api: FakeBotApi, bot: BotProcess) -> None:
    # Any retry_after is honoured (61 s and more in production); 3 s keeps the test short.
    api.fail_next("sendMessage", retry_after=3)
    api.push_text(60_005, EN_ERROR)
    await api.wait_for_calls("sendMessage", 1)
    failed_at = asyncio.get_running_loop().time()
    await api.wait_for_messages(60_005, 1, 15.0)
    assert asyncio.get_running_loop().time() - failed_at >= 2.9
    assert answers(api, 60_005) == 1


async def test_a_failed_edit_and_callback_answer_are_retried(
    api: FakeBotApi, bot: BotProcess
) -> None:
    user = 60_006
    await paste_and_wait(api, user)
    question = api.chat(user)[-1]
    api.fail_next("answerCallbackQuery", status=500)
    api.reset_next("editMessageText")
    api.push_button(user, next(t for t in question.button_texts if "iPhone" in t))
    await api.wait_for(lambda: "Step 1/" in (api.chat(user)[-1].text or ""), 15.0)
    await api.wait_for(lambda: not api.unanswered_callback_queries, 15.0)
    assert len(api.callback_answers) == 1
    assert api.chat(user)[-1].message_id == question.message_id  # edited, not sent anew


async def test_a_blocked_user_is_dropped_with_one_log_line(api: FakeBotApi, tmp_path: Path) -> None:
    user = 60_007
    api.block(user)
    async with BotProcess(api, tmp_path, LOG_LEVEL="INFO") as bot:
        api.push_text(user, EN_ERROR)
        await api.wait_for(lambda: any(e.status == 403 for e in api.errors))
        await api.wait_idle()
        await asyncio.sleep(1.0)  # a retry would come by now
        assert [e.status for e in api.errors] == [403]
    log = bot.log()
    lines = [line for line in log.splitlines() if f"chat {user}" in line]
    assert len(lines) == 1, lines
    assert "dropped" in lines[0] and "blocked" in lines[0]
    assert EN_ERROR not in log and "Which device" not in log
    assert api.token not in log and api.token.split(":")[1] not in log


async def test_a_chats_messages_keep_their_order_under_retries(
    api: FakeBotApi, bot: BotProcess
) -> None:
    user = 60_008
    api.fail_next("sendMessage", n=2, status=502)
    for text in (EN_ERROR, "/help", OTHER_ERROR):
        api.push_text(user, text)
    await api.wait_for_messages(user, 3, 20.0)
    await api.wait_idle()
    texts = [m.text or "" for m in api.chat(user)]
    assert len(texts) == 3
    assert "Apple ID server connection error" in texts[0]
    assert "How to use this bot" in texts[1]
    assert "Verification" in texts[2] and "Apple ID server connection" not in texts[2]
    assert [e.status for e in api.errors] == [502, 502]


async def test_updates_are_confirmed_only_once_kept(api: FakeBotApi, bot: BotProcess) -> None:
    update = api.push_text(60_009, EN_ERROR)
    await api.wait_for_messages(60_009, 1)
    api.push_text(60_010, EN_ERROR)  # the next getUpdates confirms the first
    await api.wait_for_messages(60_010, 1)
    assert update["update_id"] in api.confirmed_update_ids
    with sqlite3.connect(bot.db_path) as db:
        row = db.execute(
            "SELECT payload, done_at FROM inbox WHERE update_id = ?", (update["update_id"],)
        ).fetchone()
    assert row is not None and row[0] is None and row[1] is not None  # done: the text is gone


# ------------------------------------------------------------------ a database that fails


async def test_a_full_disk_leaves_the_update_for_later(api: FakeBotApi, tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "disk") as disk:
        proc = BotProcess(api, tmp_path, BOT_DB_PATH=str(disk / "bot.sqlite3"))
        await proc.start()
        try:
            await paste_and_wait(api, 61_001)
            filler = fill(disk)
            update = api.push_text(61_002, EN_ERROR)
            await asyncio.sleep(2.0)
            assert not api.chat(61_002)  # nothing could be kept or saved: no answer yet
            assert update["update_id"] not in api.confirmed_update_ids
            assert "database failed" in proc.log() or "cannot keep updates" in proc.log()
            filler.unlink()
            await api.wait_for_messages(61_002, 1, 40.0)
            await api.wait_idle()
            assert answers(api, 61_002) == 1
        finally:
            assert await proc.stop() == 0
