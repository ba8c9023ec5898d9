"""End to end, what used to drop an answer: invalid Unicode, repeated taps, handover abuse."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.channels.telegram.test_adapter import EN_ERROR, newest
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


async def test_a_repeated_tap_is_answered_without_an_edit(
    api: FakeBotApi, bot: BotProcess
) -> None:
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
