"""End to end, for the people who run the bot: /stats, learned fix order, unmatched questions."""

from __future__ import annotations

import html
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from bot.content.knowledge import Device, load_knowledge
from bot.content.locales import load_locales
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.storage.sqlite import SqliteStore
from tests.support.botproc import BotProcess
from tests.support.fakebotapi import BotMessage, FakeBotApi
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow

ADMIN = 4242
ENTRY = "apple_id_server_error"
PNG = b"\x89PNG\r\n\x1a\n"
KNOWLEDGE = load_knowledge(ROOT / "knowledge")
LOCALES = load_locales(ROOT / "locales")


async def fill_history(db: Path, walks: int, cure: str, *, first_user: int = 1) -> None:
    """Store `walks` walks of ENTRY on an iPhone that Next through the path until `cure`."""
    path = KNOWLEDGE.path_for(ENTRY, Device.IPHONE)
    now = time.time() - 3600
    async with await SqliteStore.open(db) as store:
        for user in range(first_user, first_user + walks):
            at = now + user
            lines = [OutcomeRecord(user, ENTRY, Device.IPHONE, path[0], Outcome.STARTED, at)]
            for fix in path:
                outcome = Outcome.SOLVED if fix == cure else Outcome.NEXT
                lines.append(OutcomeRecord(user, ENTRY, Device.IPHONE, fix, outcome, at))
                if fix == cure:
                    break
            await store.save(UserState(user), lines)


def texts(api: FakeBotApi, user: int) -> list[str]:
    return [m.text or "" for m in api.chat(user) if m.kind == "text"]


async def test_admin_gets_the_report_and_the_chart(api: FakeBotApi, tmp_path: Path) -> None:
    bot = BotProcess(api, tmp_path, BOT_ADMIN_IDS=f"1,{ADMIN}")
    await fill_history(bot.db_path, 5, "check_internet")
    async with bot:
        api.push_text(ADMIN, "/stats", language_code="en")
        photo: BotMessage = await api.wait_for(
            lambda: next((m for m in api.chat(ADMIN) if m.kind == "photo"), None),
            timeout=60,
            what="the chart",
        )
        report = "\n".join(texts(api, ADMIN))
        assert "Outcomes, last 7 days" in report and "Outcomes, last 30 days" in report
        assert KNOWLEDGE.entries[ENTRY].title["en"] in report
        assert "started 5 · solved 5" in report
        assert "check_internet 5/5 · 100%" in report
        assert "check_apple_status 0/5 · 0%" in report
        assert photo.file_id is not None and api.file_bytes(photo.file_id).startswith(PNG)
        assert "Solve rate per fix, last 30 days" in (photo.caption or "")
        assert api.chat(ADMIN)[-1] is photo  # the text first, then the picture

        api.push_text(ADMIN, "/stats 1", language_code="ja")
        await api.wait_for(lambda: sum(m.kind == "photo" for m in api.chat(ADMIN)) == 2, timeout=60)
        assert any("過去1日間" in t for t in texts(api, ADMIN))
        assert not api.errors
        assert "Traceback" not in bot.log()


async def test_stats_is_an_unknown_command_for_everyone_else(
    api: FakeBotApi, tmp_path: Path
) -> None:
    user = 5151
    async with BotProcess(api, tmp_path, BOT_ADMIN_IDS=str(ADMIN)):
        api.push_text(user, "/stats")
        [reply] = await api.wait_for_messages(user, 1)
        api.push_text(user, "/statz")
        _, unknown = await api.wait_for_messages(user, 2)
        await api.wait_idle()
    expected = html.unescape(LOCALES.t("en", "unknown_command", command="stats"))
    assert reply.text == expected
    assert (unknown.text or "").replace("statz", "stats") == reply.text
    assert len(api.chat(user)) == 2 and not api.calls("sendPhoto")


async def test_learned_order_is_used_from_the_first_walk(api: FakeBotApi, tmp_path: Path) -> None:
    bot = BotProcess(api, tmp_path)
    await fill_history(bot.db_path, 40, "check_apple_id_password")
    learned_first = KNOWLEDGE.fixes["check_apple_id_password"].title["en"]
    authored_first = KNOWLEDGE.fixes["check_apple_status"].title["en"]
    async with bot:
        api.push_text(901, "On my iPhone: There was an error connecting to the Apple ID server.")
        [step] = await api.wait_for_messages(901, 1)
    assert "Step 1/" in (step.text or "") and learned_first in (step.text or "")
    assert authored_first not in (step.text or "")

    off = BotProcess(api, tmp_path, BOT_LEARNING="off")
    async with off:
        api.push_text(902, "On my iPhone: There was an error connecting to the Apple ID server.")
        [step] = await api.wait_for_messages(902, 1)
    assert authored_first in (step.text or "")


async def test_unmatched_question_and_the_pick_are_stored(api: FakeBotApi, tmp_path: Path) -> None:
    user = 777
    async with BotProcess(api, tmp_path) as bot:
        api.push_text(user, "My toaster  is on FIRE")
        [reply] = await api.wait_for_messages(user, 1)
        label = next(t for t in reply.button_texts if "Cannot connect" in t)
        api.push_button(user, label, message_id=reply.message_id)
        await api.wait_for(lambda: len(api.callback_answers) == 1, what="the tap answered")
        await api.wait_idle()
    with closing(sqlite3.connect(bot.db_path)) as db:
        rows = db.execute("SELECT user_id, text, kind, choice FROM unmatched").fetchall()
    assert rows == [(user, "my toaster is on fire", "no_match", "cannot_connect_icloud")]


async def test_a_long_report_is_split_within_telegram_limits(
    api: FakeBotApi, tmp_path: Path
) -> None:
    bot = BotProcess(api, tmp_path, BOT_ADMIN_IDS=str(ADMIN))
    now = time.time() - 3600
    async with await SqliteStore.open(bot.db_path) as store:
        user = 0
        for entry in KNOWLEDGE.entries:
            for device in Device:
                path = KNOWLEDGE.path_for(entry, device)
                for cure in path:
                    user += 1
                    lines = [OutcomeRecord(user, entry, device, path[0], Outcome.STARTED, now)]
                    for fix in path[: path.index(cure)]:
                        lines.append(OutcomeRecord(user, entry, device, fix, Outcome.NEXT, now))
                    lines.append(OutcomeRecord(user, entry, device, cure, Outcome.SOLVED, now))
                    await store.save(UserState(user), lines)
    async with bot:
        api.push_text(ADMIN, "/stats", language_code="ja")
        await api.wait_for(
            lambda: any(m.kind == "photo" for m in api.chat(ADMIN)), timeout=60, what="chart"
        )
    parts = texts(api, ADMIN)
    assert len(parts) >= 3
    assert all(len(p) <= 4096 for p in parts)
    joined = "\n".join(parts)
    assert all(KNOWLEDGE.entries[e].title["ja"] in joined for e in KNOWLEDGE.entries)
    assert not api.errors
