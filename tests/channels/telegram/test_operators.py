"""End to end, for the people who run the bot: live reloads, a person taking over, /forget, pruning.

The real `python -m bot run` process against the fake Bot API, with a support group in it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.storage.base import USER_FREE_TABLES
from bot.storage.sqlite import SqliteStore
from tests.channels.telegram.test_adapter import EN_ERROR, tap, wait_text
from tests.support.botproc import BotProcess
from tests.support.fakebotapi import BotMessage, FakeBotApi
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow

GROUP = -1009876543210
OTHER_GROUP = -1001111111111
ADMIN = 4242
OPERATOR = 777
DAY = 86400.0


def copy_content(tmp_path: Path) -> tuple[Path, Path]:
    """Copy knowledge/ and locales/ where a test may edit them; return both folders."""
    knowledge, locales = tmp_path / "knowledge", tmp_path / "locales"
    shutil.copytree(ROOT / "knowledge", knowledge)
    shutil.copytree(ROOT / "locales", locales)
    return knowledge, locales


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def remove_fix(knowledge: Path, fix_id: str) -> None:
    """Delete a fix from fixes.yaml and from every entry's path."""
    entries = knowledge / "entries.yaml"
    text = re.sub(rf"(?m)^\s*- {fix_id}\s*\n", "", entries.read_text(encoding="utf-8"))
    entries.write_text(text, encoding="utf-8")
    fixes = knowledge / "fixes.yaml"
    text = re.sub(
        rf"(?ms)^  - id: {fix_id}\n.*?(?=^  - id: |^  # -)",
        "",
        fixes.read_text(encoding="utf-8"),
        count=1,
    )
    fixes.write_text(text, encoding="utf-8")


def rows_about(db_path: Path, user_id: int) -> dict[str, int]:
    """Count the rows about a user in every table that has a user_id column."""
    counts: dict[str, int] = {}
    with closing(sqlite3.connect(db_path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [c[1] for c in db.execute(f'PRAGMA table_info("{table}")')]
            if "user_id" in columns:
                sql = f'SELECT count(*) FROM "{table}" WHERE user_id = ?'
                counts[table] = db.execute(sql, (user_id,)).fetchone()[0]
            else:
                assert table in USER_FREE_TABLES, f"table {table} has no user_id column"
    return counts


async def walk_to_the_end(api: FakeBotApi, user: int, text: str = "Verification failed") -> None:
    """Paste an error, pick Windows if asked, and tap Next fix until every fix was tried."""
    count = len(api.chat(user))
    api.push_text(user, text)
    await api.wait_for_messages(user, count + 1)
    if "Which device" in (api.chat(user)[-1].text or ""):
        await tap(api, user, "Windows")
    for _ in range(40):  # bounded: no path is this long
        if not any("Next fix" in b for b in api.chat(user)[-1].button_texts):
            break
        await tap(api, user, "Next fix")
    assert "A summary to copy" in (api.chat(user)[-1].text or "")  # the final step


def group_post(api: FakeBotApi, needle: str) -> BotMessage:
    for message in reversed(api.chat(GROUP)):
        if needle in (message.text or message.caption or ""):
            return message
    raise AssertionError(f"no group post containing {needle!r}: {api.describe(GROUP)}")


async def wait_group(api: FakeBotApi, needle: str, timeout: float = 10.0) -> BotMessage:
    def find() -> BotMessage | None:
        for message in reversed(api.chat(GROUP)):
            if needle in (message.text or message.caption or ""):
                return message
        return None

    found: BotMessage = await api.wait_for(find, timeout, what=f"a group post with {needle!r}")
    return found


async def wait_log(proc: BotProcess, needle: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while needle not in proc.log():  # bounded by the deadline
        if loop.time() > deadline:
            raise AssertionError(f"{needle!r} not in the log:\n{proc.log()[-3000:]}")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------ a person takes over


async def test_operator_reply_reaches_the_user_and_either_side_ends_it(
    api: FakeBotApi, tmp_path: Path
) -> None:
    user = 6001
    api.add_group(GROUP, title="Operators")
    api.add_user(user, first_name="Ann <Lee>", username="ann_l")
    proc = await BotProcess(api, tmp_path, SUPPORT_CHAT_ID=str(GROUP)).start()
    try:
        await walk_to_the_end(api, user, "verification failed <b>& my PC")
        exhausted = api.chat(user)[-1]
        assert any("Contact Apple Support" in b for b in exhausted.button_texts)
        await tap(api, user, "Talk to a person")
        assert "passed your case" in (api.chat(user)[-1].text or "")

        summary = await wait_group(api, "A user needs help")
        text = summary.text or ""
        assert f"#user{user}" in text and "Ann <Lee>" in text and "@ann_l" in text
        assert "Verification failed" in text  # the entry
        assert "Windows" in text
        assert "Check Apple System Status" in text  # a fix tried
        assert "verification failed <b>& my PC" in text  # their own words, escaped
        assert not [e for e in api.errors if e.method == "sendMessage"]

        # The operator answers by replying to the summary.
        api.push_group_text(
            GROUP, OPERATOR, "Hi Ann, <try> this & that", reply_to=summary.message_id
        )
        answer = await wait_text(api, user, "Hi Ann")
        assert "Support" in (answer.text or "") and "<try> this & that" in (answer.text or "")

        # The user's next messages go to the group, not to the matcher.
        api.push_text(user, EN_ERROR + " still")
        relayed = await wait_group(api, EN_ERROR + " still")
        assert f"#user{user}" in (relayed.text or "")
        photo = api.add_file(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
        api.push_message(user, photo=[api.file_object(photo, width=9, height=9)])
        await api.wait_for(lambda: any(m.kind == "photo" for m in api.chat(GROUP)), what="copy")
        copied = next(m for m in api.chat(GROUP) if m.kind == "photo")

        # Operators talking among themselves are not forwarded; a reply to any post is.
        before = len(api.chat(user))
        api.push_group_text(GROUP, OPERATOR + 1, "who takes this one?")
        api.push_group_text(GROUP, OPERATOR + 1, "Ann, one more thing", reply_to=copied.message_id)
        await wait_text(api, user, "one more thing")
        assert len(api.chat(user)) == before + 1

        # The bot survives a restart in the middle of it.
        assert await proc.stop() == 0
        proc = await BotProcess(api, tmp_path, SUPPORT_CHAT_ID=str(GROUP)).start()
        api.push_group_text(GROUP, OPERATOR, "after restart", reply_to=relayed.message_id)
        await wait_text(api, user, "after restart")

        # The operator ends it with /done as a reply; both sides are told.
        api.push_group_text(GROUP, OPERATOR, "/done", reply_to=summary.message_id)
        await wait_text(api, user, "Our team has ended the conversation")
        await wait_group(api, "ended; they were told")
        api.push_text(user, EN_ERROR)
        await wait_text(api, user, "I think this is")  # the bot again
        api.push_group_text(GROUP, OPERATOR, "too late", reply_to=summary.message_id)
        await wait_group(api, "this was not delivered")

        # A second handover, ended by the user.
        await walk_to_the_end(api, user)
        await tap(api, user, "Talk to a person")
        await wait_group(api, f"#user{user}", timeout=10)
        api.push_text(user, "/done")
        await wait_text(api, user, "Your conversation with our team has ended")
        await wait_group(api, f"Ann <Lee> #user{user} ended the conversation")
        await api.wait_idle()
        assert "Traceback" not in proc.log()
        assert not api.errors, api.errors
    finally:
        await proc.stop()


async def test_other_groups_get_a_pointer_and_nothing_else(api: FakeBotApi, tmp_path: Path) -> None:
    api.add_group(GROUP)
    api.add_group(OTHER_GROUP, chat_type="group")
    async with BotProcess(api, tmp_path, SUPPORT_CHAT_ID=str(GROUP)):
        api.push_group_text(OTHER_GROUP, 11, EN_ERROR)
        api.push_group_text(OTHER_GROUP, 11, "/start@someone_elses_bot")
        api.push_group_text(OTHER_GROUP, 11, "/start@fake_support_bot")
        await api.wait_for(lambda: api.chat(OTHER_GROUP), what="the pointer")
        await api.wait_idle()
        [pointer] = api.chat(OTHER_GROUP)
        assert "private chat" in (pointer.text or "") and "@fake_support_bot" in (
            pointer.text or ""
        )
        api.push_group_text(GROUP, 12, EN_ERROR)  # in the support group, not a reply: ignored
        await api.wait_idle()
        assert api.chat(GROUP) == [] and api.chat(11) == [] and api.chat(12) == []


async def test_without_a_support_group_the_end_shows_apple_only(
    api: FakeBotApi, bot: BotProcess
) -> None:
    await walk_to_the_end(api, 6101)
    labels = api.chat(6101)[-1].button_texts
    assert any("Contact Apple Support" in b for b in labels)
    assert not any("person" in b for b in labels)


async def test_unreachable_group_ends_the_handover_politely(
    api: FakeBotApi, tmp_path: Path
) -> None:
    user = 6201  # SUPPORT_CHAT_ID names a group the bot is not in
    async with BotProcess(api, tmp_path, SUPPORT_CHAT_ID=str(GROUP)):
        await walk_to_the_end(api, user)
        await tap(api, user, "Talk to a person")
        await wait_text(api, user, "could not reach our support team")
        api.push_text(user, EN_ERROR)
        await wait_text(api, user, "I think this is")  # back with the bot, nothing relayed


# ------------------------------------------------------------------ live edits


async def test_reload_refuses_an_invalid_edit_then_takes_a_valid_one(
    api: FakeBotApi, tmp_path: Path
) -> None:
    knowledge, locales = copy_content(tmp_path)
    env = {
        "BOT_KNOWLEDGE_DIR": str(knowledge),
        "BOT_LOCALES_DIR": str(locales),
        "BOT_ADMIN_IDS": str(ADMIN),
    }
    async with BotProcess(api, tmp_path, **env) as proc:
        # Not an admin: exactly the answer to any unknown command.
        api.push_text(6301, "/reload")
        api.push_text(6301, "/frobnicate")
        await api.wait_for_messages(6301, 2)
        reload_reply, unknown = (m.text or "" for m in api.chat(6301))
        assert reload_reply == unknown.replace("frobnicate", "reload")

        # Every fix id in every path unknown: far more than one message of problems.
        entries = knowledge / "entries.yaml"
        original = entries.read_text(encoding="utf-8")
        entries.write_text(re.sub(r"(?m)^( +)- ([a-z_]+)[ \t]*$", r"\1- \2_<gone>", original))
        api.push_text(ADMIN, "/reload")
        await wait_text(api, ADMIN, "Reload refused")
        await api.wait_idle()
        reports = api.chat(ADMIN)
        assert len(reports) >= 2
        assert all(len(m.text or "") <= 4096 for m in reports)
        assert "unknown fix 'check_internet_<gone>'" in "".join(m.text or "" for m in reports)
        assert not api.errors  # every problem was escaped
        assert "refused, still using the previous knowledge" in proc.log()

        # The old knowledge still answers.
        api.push_text(6302, EN_ERROR)
        await wait_text(api, 6302, "I think this is: Apple ID server connection error")

        # A valid edit: a new title shows up.
        entries.write_text(original, encoding="utf-8")
        edit(
            entries,
            "en: Apple ID server connection error}",
            "en: Apple ID server trouble (edited)}",
        )
        count = len(api.chat(ADMIN))
        api.push_text(ADMIN, "/reload")
        await api.wait_for_messages(ADMIN, count + 1)
        assert "Reloaded" in (api.chat(ADMIN)[-1].text or "")
        api.push_text(6303, EN_ERROR)
        await wait_text(api, 6303, "Apple ID server trouble (edited)")


async def test_sighup_reloads_knowledge_and_locales(api: FakeBotApi, tmp_path: Path) -> None:
    knowledge, locales = copy_content(tmp_path)
    env = {"BOT_KNOWLEDGE_DIR": str(knowledge), "BOT_LOCALES_DIR": str(locales)}
    async with BotProcess(api, tmp_path, **env) as proc:
        assert proc.proc is not None
        edit(locales / "en.yaml", 'next: "➡️ Next fix"', 'next: "➡️ Try the next one"')
        (locales / "ja.yaml").write_text("broken: [\n", encoding="utf-8")
        proc.proc.send_signal(signal.SIGHUP)
        await wait_log(proc, "SIGHUP: refused")
        assert "ja.yaml" in proc.log()
        api.push_text(6401, "Verification failed")
        await wait_text(api, 6401, "Which device")
        await tap(api, 6401, "Windows")
        assert any("Next fix" in b for b in api.chat(6401)[-1].button_texts)

        shutil.copy(ROOT / "locales" / "ja.yaml", locales / "ja.yaml")
        proc.proc.send_signal(signal.SIGHUP)
        await wait_log(proc, "SIGHUP: reloaded")
        api.push_text(6402, "Verification failed")
        await wait_text(api, 6402, "Which device")
        await tap(api, 6402, "Windows")
        assert any("Try the next one" in b for b in api.chat(6402)[-1].button_texts)
        await tap(api, 6401, "Next fix")  # the walk from before the reload carries on
        assert "Step 2/" in (api.chat(6401)[-1].text or "")


async def test_walks_in_progress_survive_a_removed_fix(api: FakeBotApi, tmp_path: Path) -> None:
    knowledge, locales = copy_content(tmp_path)
    env = {
        "BOT_KNOWLEDGE_DIR": str(knowledge),
        "BOT_LOCALES_DIR": str(locales),
        "BOT_ADMIN_IDS": str(ADMIN),
    }
    async with BotProcess(api, tmp_path, **env):
        for user in (6501, 6502, 6503):
            api.add_user(user, language_code="en")
            api.push_text(user, EN_ERROR)
            await wait_text(api, user, "Which device")
            await tap(api, user, "iPhone")
        await tap(api, 6501, "Next fix")  # now at check_internet, the fix about to go
        await tap(api, 6503, "Next fix")
        old = api.chat(6503)[-1]
        api.push_text(6503, "Verification failed")  # another walk; the old message stays
        await wait_text(api, 6503, "Step 1/")
        total = int(re.findall(r"Step 1/(\d+)", api.chat(6502)[-1].text or "")[0])

        remove_fix(knowledge, "check_internet")
        api.push_text(ADMIN, "/reload")
        await wait_text(api, ADMIN, "Reloaded")

        await tap(api, 6501, "Next fix")  # a button naming the removed fix: the walk goes on
        assert f"Step 2/{total - 1}" in (api.chat(6501)[-1].text or "")
        await tap(api, 6502, "Next fix")  # the next fix was removed: skipped with a note
        step = api.chat(6502)[-1].text or ""
        assert "step was removed" in step and f"Step 2/{total - 1}" in step
        assert "Check your internet connection" not in step

        before = len(api.callback_answers)
        api.push_button(6503, "➡️ Next fix", message_id=old.message_id)
        await api.wait_for(lambda: len(api.callback_answers) > before, what="an answer")
        answer = api.callback_answers[-1]
        assert answer.show_alert and "out of date" in (answer.text or "")


# ------------------------------------------------------------------ privacy


async def test_forget_after_confirmation_leaves_no_rows(api: FakeBotApi, tmp_path: Path) -> None:
    user, other = 6601, 6602
    api.add_group(GROUP)
    async with BotProcess(api, tmp_path, SUPPORT_CHAT_ID=str(GROUP)) as proc:
        await walk_to_the_end(api, other)
        await walk_to_the_end(api, user)
        api.push_text(user, "zzz qqq nothing like an error")  # an unmatched question
        await wait_text(api, user, "could not recognise")
        await tap(api, user, "Talk to a person")
        await wait_group(api, f"#user{user}")
        counts = rows_about(proc.db_path, user)
        assert counts["users"] == 1 and counts["history"] > 0
        assert counts["support_messages"] >= 1

        api.push_text(user, "/done")
        await wait_text(api, user, "Your conversation with our team has ended")
        api.push_text(user, "/forget")
        await wait_text(api, user, "Delete everything I store about you?")
        await tap(api, user, "Cancel")
        assert "Nothing was deleted" in (api.chat(user)[-1].text or "")
        assert rows_about(proc.db_path, user)["history"] > 0

        api.push_text(user, "/forget")
        await wait_text(api, user, "Delete everything I store about you?")
        await tap(api, user, "Yes, delete everything")
        assert "everything I stored about you is deleted" in (api.chat(user)[-1].text or "")
        assert set(rows_about(proc.db_path, user).values()) == {0}
        assert rows_about(proc.db_path, other)["history"] > 0  # nobody else's


async def test_old_history_is_pruned_at_start_up(api: FakeBotApi, tmp_path: Path) -> None:
    db_path = tmp_path / "bot.sqlite3"
    now = time.time()

    def line(at: float) -> OutcomeRecord:
        return OutcomeRecord(
            1, "verification_failed", Device.MAC, "check_internet", Outcome.NEXT, at
        )

    async with await SqliteStore.open(db_path) as store:
        await store.save(UserState(1), [line(now - 40 * DAY), line(now - 20 * DAY), line(now)])
        await store.link_support_message(GROUP, 5, 1, now - 40 * DAY)
    async with BotProcess(api, tmp_path, BOT_HISTORY_DAYS="30") as proc:
        await wait_log(proc, "pruned 1 history line(s) older than 30 days")
    with closing(sqlite3.connect(db_path)) as db:
        ages = sorted(now - at for (at,) in db.execute("SELECT at FROM history"))
        links = db.execute("SELECT count(*) FROM support_messages").fetchone()[0]
    assert len(ages) == 2 and ages[-1] < 21 * DAY
    assert links == 0
