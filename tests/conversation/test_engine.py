"""The conversation engine, without Telegram: state and event in, state and replies out."""

from __future__ import annotations

import itertools

import pytest

from bot.app import build_engine
from bot.content.knowledge import Device
from bot.conversation.callbacks import Action, Callback
from bot.conversation.engine import Attachment, Command, Context, Engine, Reply, Result, Tap, Text
from bot.conversation.state import Outcome, UserState
from tests.support.paths import ROOT
from tests.support.replies import button, labels, urls

EN = Context(now=1000.0, language_code="en")
JA = Context(now=1000.0, language_code="ja")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(ROOT / "knowledge", ROOT / "locales")


def tap(engine: Engine, state: UserState, reply: Reply, text: str, ctx: Context = EN) -> Result:
    return engine.handle(state, Tap(button(reply, text), message_id=7), ctx)


def test_paste_then_device_then_walk_then_solved_in_english(engine: Engine) -> None:
    state = UserState(1)
    r = engine.handle(state, Text("There was an error connecting to the Apple ID server."), EN)
    [reply] = r.replies
    assert r.state.pending_entry == "apple_id_server_error"
    assert any("iPhone" in lab for lab in labels(reply))
    assert any("Mac" in lab for lab in labels(reply))
    assert any("Windows" in lab for lab in labels(reply))

    r = tap(engine, r.state, reply, "iPhone")
    [reply] = r.replies
    walk = r.state.walk
    assert walk is not None and walk.entry == "apple_id_server_error" and walk.position == 0
    assert walk.fix == "check_apple_status"
    assert r.state.device is Device.IPHONE
    assert reply.edit and reply.anchor
    assert f"1/{len(walk.path)}" in reply.text
    assert "https://www.apple.com/support/systemstatus/" in urls(reply)
    assert [rec.outcome for rec in r.records] == [Outcome.STARTED]
    assert "Solved" in " ".join(labels(reply)) and "Next fix" in " ".join(labels(reply))
    assert "Back" not in " ".join(labels(reply))

    r = tap(engine, r.state, reply, "Next fix")
    [reply] = r.replies
    assert r.state.walk is not None and r.state.walk.position == 1
    assert f"2/{len(walk.path)}" in reply.text
    assert [(rec.fix, rec.outcome) for rec in r.records] == [("check_apple_status", Outcome.NEXT)]
    assert "Back" in " ".join(labels(reply))

    r = tap(engine, r.state, reply, "Back")
    assert r.state.walk is not None and r.state.walk.position == 0

    r = tap(engine, r.state, r.replies[0], "Solved")
    assert r.state.walk is None
    assert [rec.outcome for rec in r.records] == [Outcome.SOLVED]
    assert "glad" in r.replies[0].text.lower()
    assert r.toast


def test_japanese_user_gets_japanese_buttons_and_links(engine: Engine) -> None:
    state = UserState(2, device=Device.IPHONE)
    r = engine.handle(state, Text("Apple IDサーバーへの接続中にエラーが起きました"), JA)
    [reply] = r.replies
    assert "解決した" in " ".join(labels(reply))
    assert "次の方法" in " ".join(labels(reply))
    assert "https://www.apple.com/jp/support/systemstatus/" in urls(reply)
    assert r.state.walk is not None


def test_device_named_in_text_skips_the_question(engine: Engine) -> None:
    r = engine.handle(UserState(3), Text("Macで「検証に失敗しました」って出る"), JA)
    assert r.state.walk is not None
    assert r.state.walk.device is Device.MAC
    assert r.state.walk.entry == "verification_failed"
    assert "toggle_airplane_mode" not in r.state.walk.path
    assert r.state.device is Device.MAC


def test_walk_to_the_end_offers_apple_support(engine: Engine) -> None:
    r = engine.handle(UserState(4, device=Device.WINDOWS), Text("Cannot connect to iCloud"), EN)
    walk = r.state.walk
    assert walk is not None
    reply = r.replies[0]
    for _ in walk.path:
        r = tap(engine, r.state, reply, "Next fix")
        reply = r.replies[0]
    assert r.state.walk is not None and r.state.walk.done
    assert r.records[-1].outcome is Outcome.EXHAUSTED
    assert "https://support.apple.com/contact" in urls(reply)
    back = tap(engine, r.state, reply, "Back")
    assert back.state.walk is not None and back.state.walk.fix == walk.path[-1]


def test_remembered_device_starts_walk_directly(engine: Engine) -> None:
    r = engine.handle(UserState(5, device=Device.MAC), Text("iCloud photos not syncing"), EN)
    assert r.state.walk is not None and r.state.walk.entry == "sync_not_working"
    assert "check_icloud_storage" in r.state.walk.path


def test_unrelated_text_gets_help_and_common_errors(engine: Engine) -> None:
    r = engine.handle(UserState(6), Text("hello"), EN)
    [reply] = r.replies
    assert r.state.walk is None
    assert len(reply.buttons) >= 3
    for row in reply.buttons:
        cb = row[0].data
        assert cb is not None and cb.startswith("e|")
    assert "/help" in reply.text


def test_faq_answer_then_offer_to_walk(engine: Engine) -> None:
    r = engine.handle(UserState(7), Text("会社のWi-FiだとiCloudに接続できません"), JA)
    [reply] = r.replies
    assert "ネットワーク管理者" in reply.text
    r2 = tap(engine, r.state, reply, "解決方法", JA)
    assert r2.state.pending_entry == "faq_work_school_network"


def test_deep_link_start(engine: Engine) -> None:
    r = engine.handle(UserState(8), Command("start", "verification_failed"), EN)
    assert r.state.pending_entry == "verification_failed"
    r = engine.handle(UserState(8), Command("start", "nonsense"), EN)
    assert "Hi" in r.replies[0].text


@pytest.mark.parametrize("name", ["start", "help", "reset", "lang", "device", "frobnicate"])
def test_commands_answer(engine: Engine, name: str) -> None:
    for ctx in (EN, JA):
        r = engine.handle(UserState(9), Command(name), ctx)
        assert r.replies and r.replies[0].text.strip()


def test_reset_abandons_walk(engine: Engine) -> None:
    r = engine.handle(UserState(10, device=Device.IPHONE), Text("Verification failed"), EN)
    r = engine.handle(r.state, Command("reset"), EN)
    assert r.state.walk is None
    assert [rec.outcome for rec in r.records] == [Outcome.ABANDONED]


def test_lang_and_device_are_remembered(engine: Engine) -> None:
    r = engine.handle(UserState(11), Command("lang", "ja"), EN)
    assert r.state.lang == "ja"
    r = engine.handle(r.state, Command("help"), EN)
    assert "使い方" in r.replies[0].text
    r = engine.handle(r.state, Command("device"), EN)
    r = tap(engine, r.state, r.replies[0], "Mac", EN)
    assert r.state.device is Device.MAC
    r = engine.handle(r.state, Command("lang"), EN)
    r = tap(engine, r.state, r.replies[0], "English", EN)
    assert r.state.lang == "en"


@pytest.mark.parametrize(
    "data",
    [
        "",
        "garbage",
        "n|nope|i|check_internet",
        "n|verification_failed|z|check_internet",
        "n|verification_failed|w|toggle_airplane_mode",
        "l|fr",
        "x|extra",
        "n" * 65,
        "s|a|b|c|d",
    ],
)
def test_forged_or_stale_taps_get_a_polite_answer(engine: Engine, data: str) -> None:
    state = UserState(12, device=Device.IPHONE)
    r = engine.handle(state, Tap(data, 3), EN)
    assert r.state == state
    assert r.toast and not r.replies and not r.records


def test_old_message_button_resumes_that_walk(engine: Engine) -> None:
    first = engine.handle(UserState(13, device=Device.IPHONE), Text("Verification failed"), EN)
    old_reply = first.replies[0]
    second = engine.handle(first.state, Text("Cannot connect to iCloud"), EN)
    assert [rec.outcome for rec in second.records][:1] == [Outcome.ABANDONED]
    r = engine.handle(second.state, Tap(button(old_reply, "Next fix"), message_id=99), EN)
    assert r.state.walk is not None
    assert r.state.walk.entry == "verification_failed" and r.state.walk.position == 1
    assert r.state.walk.message_id == 99


def test_double_tap_does_not_step_twice(engine: Engine) -> None:
    r = engine.handle(UserState(14, device=Device.IPHONE), Text("Verification failed"), EN)
    data = button(r.replies[0], "Next fix")
    once = engine.handle(r.state, Tap(data, 50), EN)
    twice = engine.handle(once.state, Tap(data, 50), EN)
    assert once.state.walk is not None and twice.state.walk is not None
    assert twice.state.walk.position == once.state.walk.position == 1
    assert twice.records == ()


def test_attachment_asks_for_text(engine: Engine) -> None:
    r = engine.handle(UserState(15), Attachment("sticker"), JA)
    assert "エラーメッセージ" in r.replies[0].text


def test_user_text_is_escaped(engine: Engine) -> None:
    r = engine.handle(UserState(16), Text("<b>zzz</b> & <script>qqq"), EN)
    text = r.replies[0].text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<b>zzz</b>" not in text


def test_huge_paste_gives_a_short_reply(engine: Engine) -> None:
    paste = "ログ " * 2500
    r = engine.handle(UserState(17), Text(paste), JA)
    assert r.replies and len(r.replies[0].text) < 4096


def test_every_fix_renders_within_telegram_limits(engine: Engine) -> None:
    kb = engine.knowledge
    for entry_id, device, ctx in itertools.product(kb.entries, Device, (EN, JA)):
        if entry_id.startswith("faq_"):
            continue
        r = engine.handle(UserState(18, device=device), Command("start", entry_id), ctx)
        reply = r.replies[0]
        walk = r.state.walk
        assert walk is not None
        for _ in walk.path:
            assert len(reply.text) <= 4096
            for row in reply.buttons:
                for b in row:
                    assert b.data is None or len(b.data.encode()) <= 64
            r = engine.handle(
                r.state, Tap(button(reply, "Next" if ctx is EN else "次の方法"), 1), ctx
            )
            reply = r.replies[0]


def test_callback_data_fits_for_every_entry_device_and_fix(engine: Engine) -> None:
    kb = engine.knowledge
    for entry_id, device in itertools.product(kb.entries, Device):
        for fix in kb.path_for(entry_id, device):
            for action in (Action.NEXT, Action.BACK, Action.SOLVED, Action.SHOW):
                assert len(Callback(action, entry_id, device, fix).encode().encode()) <= 64
