"""The walk: text → entry, the device question, next/back/solved, the end of a walk."""

from __future__ import annotations

import itertools

from bot.app import build_engine
from bot.content.knowledge import Device
from bot.conversation.callbacks import Action, Callback
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Tap, Text
from bot.conversation.state import Outcome, UserState
from tests.support.conversation import (
    EN,
    ENTRY,
    JA,
    tap,
)
from tests.support.paths import ROOT
from tests.support.replies import button, labels, urls


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
    for _ in walk.path[:-1]:
        r = tap(engine, r.state, reply, "Next fix")
        reply = r.replies[0]
    # The final step hands over: no "did this fix it?", no Solved or Next that repeats it.
    assert r.state.walk is not None and r.state.walk.fix == walk.path[-1] == "contact_apple_support"
    assert r.records[-1].outcome is Outcome.EXHAUSTED
    assert "https://support.apple.com/contact" in urls(reply)
    assert "Did this fix it?" not in reply.text
    assert not any("Solved" in lab or "Next" in lab for lab in labels(reply))
    assert "<pre>" in reply.text and "Cannot connect to iCloud" in reply.text
    back = tap(engine, r.state, reply, "Back")
    assert back.state.walk is not None and back.state.walk.fix == walk.path[-2]
    assert back.records == ()  # Back from the end records nothing


def test_old_solved_or_next_on_the_final_step_records_nothing(engine: Engine) -> None:
    r = engine.handle(UserState(40, device=Device.MAC), Command("start", ENTRY), EN)
    walk = r.state.walk
    assert walk is not None
    final = walk.path[-1]
    for action in (Action.SOLVED, Action.NEXT):  # buttons of messages from before the change
        data = Callback(action, ENTRY, Device.MAC, final).encode()
        ended = engine.handle(r.state, Tap(data, 99), EN)
        assert ended.records == ()
        assert ended.state.walk is not None and ended.state.walk.fix == final
        assert "Did this fix it?" not in ended.replies[0].text


def test_remembered_device_starts_walk_directly(engine: Engine) -> None:
    r = engine.handle(UserState(5, device=Device.MAC), Text("iCloud photos not syncing"), EN)
    assert r.state.walk is not None and r.state.walk.entry == "sync_not_working"
    assert "check_icloud_storage" in r.state.walk.path


def test_faq_answer_then_offer_to_walk(engine: Engine) -> None:
    r = engine.handle(UserState(7), Text("会社のWi-FiだとiCloudに接続できません"), JA)
    [reply] = r.replies
    assert "ネットワーク管理者" in reply.text
    r2 = tap(engine, r.state, reply, "解決方法", JA)
    assert r2.state.pending_entry == "faq_work_school_network"


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


def test_every_fix_renders_within_telegram_limits(engine: Engine) -> None:
    kb = engine.knowledge
    for entry_id, device, ctx in itertools.product(kb.entries, Device, (EN, JA)):
        if entry_id.startswith("faq_"):
            continue
        if not kb.applies(entry_id, device):
            continue  # no walk: tests/conversation/test_every_path.py
        r = engine.handle(UserState(18, device=device), Command("start", entry_id), ctx)
        reply = r.replies[0]
        walk = r.state.walk
        assert walk is not None
        for _ in walk.path[:-1]:
            assert len(reply.text) <= 4096
            for row in reply.buttons:
                for b in row:
                    assert b.data is None or len(b.data.encode()) <= 64
            r = engine.handle(
                r.state, Tap(button(reply, "Next" if ctx is EN else "次の方法"), 1), ctx
            )
            reply = r.replies[0]
        assert len(reply.text) <= 4096  # the final step, with its summary


def test_callback_data_fits_for_every_entry_device_and_fix(engine: Engine) -> None:
    kb = engine.knowledge
    for entry_id, device in itertools.product(kb.entries, Device):
        for fix in kb.path_for(entry_id, device):
            for action in (Action.NEXT, Action.BACK, Action.SOLVED, Action.SHOW):
                assert len(Callback(action, entry_id, device, fix).encode().encode()) <= 64


def test_the_final_step_stays_last_whatever_was_learned(engine: Engine) -> None:
    authored = engine.knowledge.path_for(ENTRY, Device.IPHONE)
    assert engine.knowledge.fixes[authored[-2]].stage == "last_resort"  # a run of two
    swapped = (*authored[:-2], authored[-1], authored[-2])
    learned = build_engine(ROOT / "knowledge", ROOT / "locales")
    learned.learned = {(ENTRY, Device.IPHONE): swapped}
    assert learned.path_for(ENTRY, Device.IPHONE) == authored


def test_a_remembered_device_is_confirmed_with_a_change_button(engine: Engine) -> None:
    r = engine.handle(UserState(41, device=Device.MAC), Text("Verification failed"), EN)
    [reply] = r.replies
    assert "For your 💻 Mac." in reply.text
    change = button(reply, "Change device")
    asked = engine.handle(r.state, Tap(change, 5), EN)
    assert any("Windows" in lab for lab in labels(asked.replies[0]))
    after = tap(engine, r.state, reply, "Next fix")  # only the first step carries it
    assert "Change device" not in " ".join(labels(after.replies[0]))
    chosen = engine.handle(UserState(42), Text("Verification failed"), EN)
    started = tap(engine, chosen.state, chosen.replies[0], "Mac")  # just chosen: no line
    assert "For your" not in started.replies[0].text
    assert "Change device" not in " ".join(labels(started.replies[0]))


def test_each_step_says_which_device_it_is_for(engine: Engine) -> None:
    r = engine.handle(UserState(43, device=Device.WINDOWS), Command("start", ENTRY), JA)
    assert "<b>ステップ 1/" in r.replies[0].text and "・ 🖥 Windows PC" in r.replies[0].text


def test_a_fix_moved_ahead_of_its_stage_shows_no_stage_label(engine: Engine) -> None:
    r = engine.handle(UserState(44, device=Device.MAC), Command("start", "sync_not_working"), EN)
    for _ in range(3):  # to check_icloud_storage, a last-resort fix moved to step 4
        r = tap(engine, r.state, r.replies[0], "Next fix")
    assert r.state.walk is not None and r.state.walk.fix == "check_icloud_storage"
    assert "<b>Step 4/14</b> · 💻 Mac" in r.replies[0].text
    assert "Last resort" not in r.replies[0].text
    r = tap(engine, r.state, r.replies[0], "Next fix")
    assert "<b>Step 5/14</b> · Quick fixes · 💻 Mac" in r.replies[0].text


def test_an_old_button_of_a_walk_not_for_that_device_leads_to_the_right_device(
    engine: Engine,
) -> None:
    fix = engine.knowledge.path_for("backup_failed", Device.MAC)[1]
    old = Tap(Callback(Action.NEXT, "backup_failed", Device.MAC, fix).encode(), 3)
    r = engine.handle(UserState(45, device=Device.MAC), old, EN)
    assert r.state.walk is None and r.records == ()
    assert r.state.pending_entry == "backup_failed"
    assert labels(r.replies[0]) == ["📱 iPhone / iPad", "🔄 Start over"]


def test_the_device_typed_at_the_device_question_starts_the_walk(engine: Engine) -> None:
    # On a phone people type their answer as often as they tap it.
    for said, device in (
        ("iPhone", Device.IPHONE),
        ("Macです", Device.MAC),
        ("windows pc", Device.WINDOWS),
    ):
        asked = engine.handle(UserState(40), Text("Verification failed"), EN)
        assert asked.state.pending_entry == "verification_failed"
        r = engine.handle(asked.state, Text(said), EN)
        walk = r.state.walk
        assert walk is not None and walk.entry == "verification_failed" and walk.position == 0
        assert r.state.device is device and r.state.pending_entry is None
        assert not r.replies[0].edit  # a new message under what was typed


def test_a_device_typed_with_no_question_waiting_is_not_an_answer(engine: Engine) -> None:
    r = engine.handle(UserState(41), Text("iPhone"), EN)
    assert r.state.walk is None
