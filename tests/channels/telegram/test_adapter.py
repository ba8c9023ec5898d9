"""End to end: the real `python -m bot run` process against the strict fake Bot API."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.telegram.adapter import markup_json
from bot.conversation.replies import Button, Keyboard
from tests.support.botproc import TOKEN, BotProcess
from tests.support.fakebotapi import BotMessage, FakeBotApi
from tests.support.paths import KNOWLEDGE

pytestmark = pytest.mark.slow

EN_ERROR = "There was an error connecting to the Apple ID server."
JA_ERROR = "Apple IDサーバーへの接続中にエラーが起きました"


async def newest(api: FakeBotApi, user: int, count: int) -> BotMessage:
    messages = await api.wait_for_messages(user, count)
    return messages[-1]


async def wait_text(api: FakeBotApi, user: int, needle: str, timeout: float = 10.0) -> BotMessage:
    """Wait until some current bot message to the user contains needle; return it."""

    def find() -> BotMessage | None:
        for message in reversed(api.chat(user)):
            if needle in (message.text or ""):
                return message
        return None

    found: BotMessage = await api.wait_for(find, timeout, what=f"a message containing {needle!r}")
    return found


async def tap(api: FakeBotApi, user: int, label: str, lang: str = "en") -> None:
    """Tap the newest button whose label contains `label` and wait for the answer."""
    for message in reversed(api.chat(user)):
        for text in message.button_texts:
            if label in text:
                before = len(api.callback_answers)
                api.push_button(user, text, message_id=message.message_id, language_code=lang)
                await api.wait_for(
                    lambda n=before: len(api.callback_answers) > n, what="callback answer"
                )
                await api.wait_idle()
                return
    raise AssertionError(
        f"no button containing {label!r}: {[m.button_texts for m in api.chat(user)]}"
    )


async def test_walk_in_english(api: FakeBotApi, bot: BotProcess) -> None:
    user = 1001
    api.push_text(user, EN_ERROR, language_code="en")
    ask = await newest(api, user, 1)
    assert any("iPhone" in b for b in ask.button_texts)
    assert any("Mac" in b for b in ask.button_texts)
    assert any("Windows" in b for b in ask.button_texts)

    await tap(api, user, "iPhone")
    step = api.chat(user)[-1]
    assert step.message_id == ask.message_id and step.edited  # the question became step 1
    assert "Step 1/" in (step.text or "")
    assert any(b.get("url") == "https://www.apple.com/support/systemstatus/" for b in step.buttons)
    assert any("Solved" in b for b in step.button_texts)
    assert any("Next fix" in b for b in step.button_texts)

    await tap(api, user, "Next fix")
    assert "Step 2/" in (api.chat(user)[-1].text or "")
    await tap(api, user, "Back")
    assert "Step 1/" in (api.chat(user)[-1].text or "")
    await tap(api, user, "Next fix")
    await tap(api, user, "Solved")
    assert "glad" in (api.chat(user)[-1].text or "").lower()
    assert api.unanswered_callback_queries == []

    with sqlite3.connect(bot.db_path) as db:
        outcomes = [
            row[0]
            for row in db.execute(
                "SELECT outcome FROM history WHERE user_id = ? ORDER BY id", (user,)
            )
        ]
    assert outcomes == ["started", "next", "back", "next", "solved"]


async def test_walk_in_japanese_with_device_in_text(api: FakeBotApi, bot: BotProcess) -> None:
    user = 1002
    api.push_text(user, "Macで" + JA_ERROR + "と出ます", language_code="ja")
    step = await newest(api, user, 1)
    assert "ステップ 1/" in (step.text or "")
    assert any("解決した" in b for b in step.button_texts)
    assert any("次の方法" in b for b in step.button_texts)
    assert any(
        b.get("url") == "https://www.apple.com/jp/support/systemstatus/" for b in step.buttons
    )
    await tap(api, user, "次の方法", "ja")
    assert "ステップ 2/" in (api.chat(user)[-1].text or "")
    await tap(api, user, "解決した", "ja")
    assert "解決" in (api.chat(user)[-1].text or "")


async def test_commands_registered_in_both_languages(api: FakeBotApi, bot: BotProcess) -> None:
    await api.wait_for(lambda: api.commands() and api.commands(language_code="ja"))
    names = {c["command"] for c in api.commands()}
    assert {"start", "help", "reset", "lang", "device"} <= names
    assert any("使い方" in c["description"] for c in api.commands(language_code="ja"))


async def test_kill_9_mid_walk_then_old_buttons_continue(api: FakeBotApi, tmp_path: Path) -> None:
    user = 1003
    proc = await BotProcess(api, tmp_path).start()
    api.push_text(user, "Verification failed", language_code="en")
    await newest(api, user, 1)
    await tap(api, user, "Windows")
    await tap(api, user, "Next fix")
    await tap(api, user, "Next fix")
    message = api.chat(user)[-1]
    assert "Step 3/" in (message.text or "")
    await proc.kill()

    proc2 = await BotProcess(api, tmp_path).start()
    try:
        await tap(api, user, "Next fix")  # a button of the message shown before the crash
        assert "Step 4/" in (api.chat(user)[-1].text or "")
        assert api.chat(user)[-1].message_id == message.message_id
    finally:
        assert await proc2.stop() == 0


async def test_bad_inputs_get_polite_answers(api: FakeBotApi, bot: BotProcess) -> None:
    user = 1004
    api.push_message(
        user,
        sticker={
            "file_id": "s1",
            "file_unique_id": "u1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    )
    assert "text" in (await newest(api, user, 1)).text.lower()  # type: ignore[union-attr]

    photo = api.add_file(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    api.push_message(user, photo=[api.file_object(photo, width=90, height=90)])
    await newest(api, user, 2)

    api.push_text(user, "x" * 5000)
    reply = await newest(api, user, 3)
    assert reply.text and len(reply.text) < 4096

    api.push_text(user, "<b>bold</b> & <script>alert(1)</script>")
    reply = await newest(api, user, 4)
    assert "<script>alert(1)</script>" in (reply.text or "")  # shown as text, not parsed
    assert not [e for e in api.errors if e.method.lower() == "sendmessage"]

    msg = api.chat(user)[-1]
    for data in ("garbage", "n|nope|i|check_internet", "l|xx", "e|" + "a" * 60):
        api.push_tap(user, msg.message_id, data)
    await api.wait_idle()
    await api.wait_for(lambda: not api.unanswered_callback_queries, what="every tap answered")
    assert all(a.text for a in api.callback_answers[-4:])

    api.push_text(user, "/frobnicate")
    assert "/help" in ((await newest(api, user, 5)).text or "")
    assert "Traceback" not in bot.log()


async def test_429_is_waited_out(api: FakeBotApi, tmp_path: Path) -> None:
    user = 1005
    # Deprecations as errors: PTB 22 deprecates RetryAfter.retry_after as a number, and the
    # bot runs without PTB_TIMEDELTA (nothing writes os.environ).
    env = {"PYTHONWARNINGS": "error::DeprecationWarning"}
    async with BotProcess(api, tmp_path, **env) as bot:
        api.fail_next("sendMessage", 1, retry_after=1)
        api.push_text(user, EN_ERROR)
        await api.wait_for_messages(user, 1, timeout=15)
        assert any(e.status == 429 for e in api.errors)
        assert "Traceback" not in bot.log()


async def test_double_tap_not_modified_is_ignored(api: FakeBotApi, bot: BotProcess) -> None:
    user = 1006
    api.push_text(user, "Cannot connect to iCloud")
    ask = await newest(api, user, 1)
    data = next(b["callback_data"] for b in ask.buttons if "Mac" in b["text"])
    api.push_tap(user, ask.message_id, data)
    api.push_tap(user, ask.message_id, data)  # the same button twice
    await api.wait_idle()
    await api.wait_for(lambda: not api.unanswered_callback_queries, what="both taps answered")
    assert "Step 1/" in (api.chat(user)[-1].text or "")
    assert "Traceback" not in bot.log()


async def test_blocked_user_is_skipped(api: FakeBotApi, bot: BotProcess) -> None:
    api.push_text(1007, "hello")
    await newest(api, 1007, 1)
    api.block(1007)
    api.push_text(1007, "hello again")
    api.push_text(1008, EN_ERROR)
    await newest(api, 1008, 1)
    await api.wait_idle()
    assert any(e.status == 403 for e in api.errors)
    assert "Traceback" not in bot.log()


async def test_fifty_users_at_once(api: FakeBotApi, bot: BotProcess) -> None:
    users = range(2000, 2050)
    for n, user in enumerate(users):
        api.push_text(user, EN_ERROR if n % 2 else JA_ERROR, language_code="en" if n % 2 else "ja")
    await api.wait_for(
        lambda: all(api.chat(u) for u in users), timeout=30, what="a reply to everyone"
    )
    for user in users:
        api.push_button(user, api.chat(user)[-1].button_texts[0])
    await api.wait_for(
        lambda: all("1/" in (api.chat(u)[-1].text or "") for u in users),
        timeout=30,
        what="step 1 for everyone",
    )
    assert not api.unanswered_callback_queries


async def test_token_never_logged_and_sigterm_exits_0(api: FakeBotApi, tmp_path: Path) -> None:
    proc = await BotProcess(api, tmp_path, LOG_LEVEL="DEBUG").start()
    api.push_text(1009, EN_ERROR)
    await newest(api, 1009, 1)
    api.fail_next("sendMessage", 1, status=500, description="Internal Server Error")
    api.push_text(1009, "hello")
    await api.wait_idle()
    assert await proc.stop(signal.SIGTERM) == 0
    log = proc.log()
    assert "getUpdates" in log or "polling" in log  # the log is not empty
    assert TOKEN not in log
    assert TOKEN.split(":")[1] not in log


async def test_sigint_exits_0(api: FakeBotApi, tmp_path: Path) -> None:
    proc = await BotProcess(api, tmp_path).start()
    assert await proc.stop(signal.SIGINT) == 0


@pytest.mark.parametrize(
    ("token", "message"), [("", "TELEGRAM_BOT_TOKEN is not set"), ("abc", "malformed")]
)
async def test_token_missing_or_malformed(
    api: FakeBotApi, tmp_path: Path, token: str, message: str
) -> None:
    proc = BotProcess(api, tmp_path, TELEGRAM_BOT_TOKEN=token)
    await proc.start(wait=False)
    assert await proc.wait_exit() != 0
    log = proc.log().strip()
    assert message in log and len(log.splitlines()) == 1


async def test_refuses_invalid_knowledge(api: FakeBotApi, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    root = KNOWLEDGE
    for name in ("fixes.yaml", "entries.yaml", "info.yaml"):
        (kb / name).write_text((root / name).read_text(encoding="utf-8"), encoding="utf-8")
    text = (kb / "entries.yaml").read_text(encoding="utf-8")
    (kb / "entries.yaml").write_text(
        text.replace("- check_internet", "- check_the_moon", 1), encoding="utf-8"
    )
    proc = BotProcess(api, tmp_path, BOT_KNOWLEDGE_DIR=str(kb))
    await proc.start(wait=False)
    assert await proc.wait_exit() == 1
    assert "unknown fix 'check_the_moon'" in proc.log()
    assert "entries.yaml:" in proc.log()
    assert not api.calls("getUpdates")


async def test_history_survives_in_sqlite(api: FakeBotApi, bot: BotProcess) -> None:
    api.push_text(1010, "/lang ja")
    await newest(api, 1010, 1)
    api.push_text(1010, "/help")
    assert "使い方" in ((await newest(api, 1010, 2)).text or "")
    with sqlite3.connect(bot.db_path) as db:
        (lang, state) = db.execute("SELECT lang, state FROM users WHERE user_id = 1010").fetchone()
    assert lang == "ja" and json.loads(state)["walk"] is None
    await asyncio.sleep(0)


def ptb_markup(buttons: Keyboard) -> str:
    """The reply_markup PTB writes for the keyboard (what Bot.send_message sends)."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.label, url=b.url)
                if b.url
                else InlineKeyboardButton(b.label, callback_data=b.data)
                for b in row
            ]
            for row in buttons
        ]
    ).to_json()


@pytest.mark.parametrize(
    "buttons",
    [
        ((Button("✅ 解決した", "s|e|i|f"), Button("➡️ Next fix", "n|e|i|f")),),
        (
            (
                Button(
                    "Open Apple System Status", url="https://www.apple.com/support/systemstatus/"
                ),
            ),
            (Button('"quoted" \\ label', "cd"), Button("🔄 Start over", "r")),
        ),
        ((Button("no data"),), (Button("empty url", "x", url=""),), (Button("empty data", ""),)),
    ],
)
def test_a_keyboard_is_written_as_ptb_writes_it(buttons: Keyboard) -> None:
    assert markup_json(buttons) == ptb_markup(buttons)


def test_no_buttons_no_keyboard() -> None:
    assert markup_json(()) is None
