"""End to end, what used to drop an answer: invalid Unicode, repeated taps, handover abuse."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.channels.telegram.test_adapter import newest, tap, wait_text
from tests.channels.telegram.test_operators import GROUP, OPERATOR, wait_group, walk_to_the_end
from tests.support.botproc import BotProcess
from tests.support.fakebotapi import FakeBotApi

pytestmark = pytest.mark.slow


async def test_a_lone_surrogate_is_cleaned_not_fatal(api: FakeBotApi, bot: BotProcess) -> None:
    user = 6001
    api.push_text(user, "Verification failed \ud800", first_name="Ann \udfff")
    reply = await newest(api, user, 1)
    assert reply.text
    api.push_text(user, "\ud800")
    assert (await newest(api, user, 2)).text
    with sqlite3.connect(bot.db_path) as db:
        (state,) = db.execute("SELECT state FROM users WHERE user_id = ?", (user,)).fetchone()
    assert "\\ud800" not in state and "\ufffd" in json.loads(state)["extra"]["words"]
    assert "Traceback" not in bot.log()


async def test_a_repeated_tap_is_answered_without_an_edit(api: FakeBotApi, bot: BotProcess) -> None:
    user = 6002
    api.push_text(user, "Cannot connect to iCloud")
    ask = await newest(api, user, 1)
    data = next(b["callback_data"] for b in ask.buttons if "Mac" in b["text"])
    for _ in range(3):  # the same button, quickly
        api.push_tap(user, ask.message_id, data)
    await api.wait_idle()
    await api.wait_for(lambda: not api.unanswered_callback_queries, what="every tap answered")
    assert "Step 1/" in (api.chat(user)[-1].text or "")
    step = api.chat(user)[-1]
    next_data = next(b["callback_data"] for b in step.buttons if "Next" in b["text"])
    for _ in range(2):
        api.push_tap(user, step.message_id, next_data)
    await api.wait_idle()
    await api.wait_for(lambda: not api.unanswered_callback_queries, what="every tap answered")
    assert "Step 2/" in (api.chat(user)[-1].text or "")
    refused = [e for e in api.errors if e.method == "editMessageText"]
    assert refused == [], refused
    assert len(api.calls("editMessageText")) == 2  # one per step shown


async def test_only_operators_are_relayed_as_support(api: FakeBotApi, tmp_path: Path) -> None:
    user, member = 6003, OPERATOR + 50
    api.add_group(GROUP, title="Operators")
    env = {"SUPPORT_CHAT_ID": str(GROUP), "SUPPORT_OPERATOR_IDS": f" {OPERATOR}, 1"}
    async with BotProcess(api, tmp_path, **env) as proc:
        await walk_to_the_end(api, user)
        await tap(api, user, "Talk to a person")
        summary = await wait_group(api, "A user needs help")
        before = len(api.chat(user))
        api.push_group_text(GROUP, member, "I am not on the team", reply_to=summary.message_id)
        hint = await wait_group(api, "Only the support team's operators")
        assert hint.reply_to_message_id is not None
        api.push_group_text(GROUP, member, "me again", reply_to=summary.message_id)
        api.push_group_text(GROUP, OPERATOR, "Hello from the team", reply_to=summary.message_id)
        await wait_text(api, user, "Hello from the team")
        await api.wait_idle()
        assert len(api.chat(user)) == before + 1  # only the operator's answer
        hints = [m for m in api.chat(GROUP) if "Only the support team's" in (m.text or "")]
        assert len(hints) == 1  # not one per message
        assert "Traceback" not in proc.log()


async def test_posts_to_the_support_group_are_rate_limited(api: FakeBotApi, tmp_path: Path) -> None:
    user = 6004
    api.add_group(GROUP, title="Operators")
    async with BotProcess(api, tmp_path, SUPPORT_CHAT_ID=str(GROUP)) as proc:
        await walk_to_the_end(api, user)
        await tap(api, user, "Talk to a person")
        await wait_group(api, "A user needs help")
        for n in range(12):
            api.push_text(user, f"message number {n}")
        await wait_text(api, user, "You are sending a lot at once")
        await api.wait_idle()
        relayed = [m for m in api.chat(GROUP) if "message number" in (m.text or "")]
        assert 3 <= len(relayed) <= 5  # the summary took one post of the burst of five
        notices = [m for m in api.chat(user) if "sending a lot" in (m.text or "")]
        assert len(notices) == 1
        # Open-and-close in a loop does not flood the group either.
        for _ in range(4):
            api.push_text(user, "/done")
            await tap(api, user, "Talk to a person")
        await api.wait_idle()
        assert len(api.chat(GROUP)) <= 8
        assert "Traceback" not in proc.log()


async def test_one_open_handover_per_user(api: FakeBotApi, tmp_path: Path) -> None:
    user = 6005
    api.add_group(GROUP, title="Operators")
    async with BotProcess(api, tmp_path, SUPPORT_CHAT_ID=str(GROUP)) as proc:
        await walk_to_the_end(api, user)
        end = api.chat(user)[-1]
        data = next(b["callback_data"] for b in end.buttons if "person" in b["text"])
        for _ in range(3):  # tapped again and again before the first is handled
            api.push_tap(user, end.message_id, data)
        await api.wait_idle()
        await api.wait_for(lambda: not api.unanswered_callback_queries, what="every tap answered")
        summaries = [m for m in api.chat(GROUP) if "A user needs help" in (m.text or "")]
        assert len(summaries) == 1
        assert any("already talking" in (a.text or "") for a in api.callback_answers)
        assert "Traceback" not in proc.log()
