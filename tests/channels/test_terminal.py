"""The terminal channel: scripted input, the printed conversation, a real SQLite file."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from bot.app import live_engine, run_chat
from bot.channels.base import Turn
from bot.channels.terminal import TERMINAL_USER, TerminalChannel, terminal_chat, to_plain
from bot.config import Settings
from bot.content.knowledge import Device
from bot.content.locales import Html
from bot.conversation.replies import Reply, Subscribe, ToSupport
from bot.conversation.state import UserState
from bot.service import Services
from bot.storage.sqlite import SqliteStore
from tests.support.paths import KNOWLEDGE, LOCALES, ROOT

EN_ERROR = "There was an error connecting to the Apple ID server."


async def chat(script: str, db: Path, lang: str = "en") -> str:
    """Run a terminal chat over the script's lines; return everything it printed."""
    out = io.StringIO()
    code = await run_chat(Settings(lang=lang), KNOWLEDGE, LOCALES, db, io.StringIO(script), out)
    assert code == 0
    return out.getvalue()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


async def test_a_walk_with_numbered_choices(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite3"
    printed = await chat(f"{EN_ERROR}\n1\n", db)
    assert "Hi!" in printed  # greeted with /start
    assert "Which device" in printed
    assert "[1] 📱 iPhone / iPad" in printed
    assert "Step 1/" in printed
    assert "<b>" not in printed  # HTML turned into plain text
    [(outcome,)] = rows(db, "SELECT outcome FROM history")
    assert outcome == "started"


async def test_forget_deletes_the_user(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite3"
    printed = await chat(f"{EN_ERROR}\n/forget\n1\n", db)
    assert "everything I stored about you is deleted" in printed
    assert rows(db, f"SELECT * FROM users WHERE user_id = {TERMINAL_USER}") == []
    assert rows(db, "SELECT * FROM history") == []


async def test_stats_and_reload_for_the_person_at_the_terminal(tmp_path: Path) -> None:
    printed = await chat(f"{EN_ERROR}\n2\n/stats\n/reload\n", tmp_path / "chat.sqlite3")
    assert "Outcomes, last 7 days" in printed
    assert "Walks started: 1" in printed
    assert "Reloaded:" in printed


async def test_unmatched_questions_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite3"
    printed = await chat("my toaster sings at night\n3\n", db)
    assert "could not recognise" in printed
    [(text, choice)] = rows(db, "SELECT text, choice FROM unmatched WHERE choice IS NOT NULL")
    assert "toaster" in str(text) and choice == "verification_failed"


async def test_a_link_choice_is_shown_not_tapped(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite3"
    printed = await chat(f"{EN_ERROR}\n1\n", db)
    step = printed.rsplit("Step 1/", 1)[1]
    link = next(line for line in step.splitlines() if "https://" in line)
    number = link.strip().split("]")[0].lstrip("[")
    printed = await chat(f"{EN_ERROR}\n1\n{number}\n", tmp_path / "again.sqlite3")
    assert "→ open https://" in printed


async def test_a_handover_from_telegram_ends_here(tmp_path: Path) -> None:
    """A shared database: the user was talking to a person on Telegram."""
    db = tmp_path / "chat.sqlite3"
    async with await SqliteStore.open(db) as store:
        handover = {"since": 1.0, "lang": "en", "name": "Ann"}
        await store.save(UserState(TERMINAL_USER, lang="en", extra={"handover": handover}))
    printed = await chat(f"{EN_ERROR}\n", db)
    assert "Which device" in printed  # the bot answers, nothing is relayed
    [(state,)] = rows(db, f"SELECT state FROM users WHERE user_id = {TERMINAL_USER}")
    assert "handover" not in str(state)


async def test_a_person_is_reachable_only_on_telegram(tmp_path: Path) -> None:
    out = io.StringIO()
    live = live_engine(KNOWLEDGE, LOCALES)
    async with await SqliteStore.open(tmp_path / "chat.sqlite3") as store:
        terminal = terminal_chat(Services(live, store), out, "en")
        turn = Turn(TERMINAL_USER, TERMINAL_USER, live.engine, UserState(TERMINAL_USER))
        await terminal.service.handlers.apply(ToSupport(Html("ended"), from_user=False), turn)
        assert out.getvalue() == ""  # a notice for the group: nobody to read it
        await terminal.service.handlers.apply(ToSupport(Html("help!")), turn)
    assert "can be reached only on Telegram" in out.getvalue()


async def test_notifications_need_telegram(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite3"
    out = io.StringIO()
    live = live_engine(KNOWLEDGE, LOCALES)
    async with await SqliteStore.open(db) as store:
        terminal = terminal_chat(Services(live, store), out, "en")
        effect = Subscribe("apple_id_server_error", Device.IPHONE, "en", ("iCloud Mail",))
        turn = Turn(TERMINAL_USER, TERMINAL_USER, live.engine, UserState(TERMINAL_USER))
        await terminal.service.handlers.apply(effect, turn)
        assert await store.subscriptions() == []
    assert "Notifications need Telegram" in out.getvalue()


async def test_japanese_from_settings(tmp_path: Path) -> None:
    printed = await chat("/help\n", tmp_path / "chat.sqlite3", lang="ja")
    assert "こんにちは" in printed


async def test_the_channel_has_no_length_limit() -> None:
    channel = TerminalChannel(io.StringIO())
    assert channel.limits.fits("x" * 100_000)
    first = await channel.send(1, Reply("<i>a</i> &amp; b"))
    assert await channel.edit(1, first, Reply("c")) == first
    assert await channel.send(1, Reply("d")) == first + 1
    assert to_plain("<i>a</i> &amp; b") == "a & b"


@pytest.mark.slow
def test_the_command_line_reads_lang_and_stdin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    env["LANG"] = "ja_JP.UTF-8"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--db", str(tmp_path / "c.sqlite3")],
        input="/help\n/quit\nnever read\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=True,
    )
    assert "こんにちは" in done.stdout
    assert done.stderr == ""
