"""The user's commands and settings: /start deep links, /reset, /lang, /device, /forget."""

from __future__ import annotations

from dataclasses import replace

from bot.content.knowledge import Device
from bot.conversation.callbacks import Action, Callback
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Tap, Text
from bot.conversation.flows.handover import WORDS
from bot.conversation.replies import Forget, ToSupport
from bot.conversation.state import Outcome, UserState
from tests.support.conversation import (
    EN,
    ENTRY,
    SUPPORT,
    exhausted,
    tap,
)
from tests.support.replies import button as data


def test_deep_link_start(engine: Engine) -> None:
    r = engine.handle(UserState(8), Command("start", "verification_failed"), EN)
    assert r.state.pending_entry == "verification_failed"
    r = engine.handle(UserState(8), Command("start", "nonsense"), EN)
    assert "Hi" in r.replies[0].text


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


def test_forget_asks_first(engine: Engine) -> None:
    state = UserState(20, lang="en", device=Device.MAC, extra={WORDS: "secret"})
    ask = engine.handle(state, Command("forget"), EN)
    assert ask.state == state and ask.effects == ()
    assert "Delete everything" in ask.replies[0].text
    kept = engine.handle(state, Tap(data(ask.replies[0], "Cancel"), 1), EN)
    assert kept.state == state and kept.effects == () and kept.replies[0].edit
    gone = engine.handle(state, Tap(data(ask.replies[0], "Yes, delete"), 1), EN)
    assert gone.state == UserState(20)
    [forget] = gone.effects
    assert isinstance(forget, Forget) and "deleted" in forget.notice
    for data_ in (Callback(Action.FORGET).encode(), Callback(Action.KEEP).encode()):
        assert len(data_.encode()) <= 64


def test_forget_during_a_handover_tells_the_group(engine: Engine) -> None:
    r = exhausted(engine, 21)
    r = engine.handle(r.state, Tap(data(r.replies[0], "Talk to a person"), 1), SUPPORT)
    gone = engine.handle(r.state, Tap(Callback(Action.FORGET).encode(), 1), SUPPORT)
    notice, forget = gone.effects
    assert isinstance(notice, ToSupport) and "ended the conversation" in notice.text
    assert isinstance(forget, Forget)


def test_device_mid_walk_redraws_the_walk_for_the_new_device(engine: Engine) -> None:
    r = engine.handle(UserState(30, device=Device.IPHONE), Command("start", "sync_not_working"), EN)
    for _ in range(3):
        r = tap(engine, r.state, r.replies[0], "Next fix")
    walk = r.state.walk
    assert walk is not None and walk.fix == "check_icloud_storage"
    asked = engine.handle(r.state, Command("device"), EN)
    moved = tap(engine, asked.state, asked.replies[0], "Windows")
    said, shown = moved.replies
    assert said.edit and "Windows" in said.text
    assert (
        not shown.edit
        and shown.anchor
        and "Now showing the steps for your 🖥 Windows PC" in shown.text
    )
    new = moved.state.walk
    assert new is not None and new.device is Device.WINDOWS and new.fix == "check_icloud_storage"
    assert new.path == engine.path_for("sync_not_working", Device.WINDOWS)
    assert [(rec.device, rec.outcome) for rec in moved.records] == [
        (Device.IPHONE, Outcome.ABANDONED),
        (Device.WINDOWS, Outcome.STARTED),
    ]
    assert moved.state.device is Device.WINDOWS
    # a fix the new device does not have: the walk starts from its first fix
    r = engine.handle(UserState(31, device=Device.IPHONE), Command("start", ENTRY), EN)
    current = r.state.walk
    assert current is not None
    only_iphone = next(
        i
        for i, f in enumerate(current.path)
        if f not in engine.knowledge.path_for(ENTRY, Device.MAC)
    )
    at = replace(current, position=only_iphone)
    asked = engine.handle(r.state.with_(walk=at), Command("device"), EN)
    moved = tap(engine, asked.state, asked.replies[0], "Mac")
    assert moved.state.walk is not None and moved.state.walk.position == 0


def test_device_for_a_pending_entry_starts_its_walk(engine: Engine) -> None:
    r = engine.handle(UserState(32, device=Device.MAC), Command("start", "backup_failed"), EN)
    assert r.state.walk is None and r.state.pending_entry == "backup_failed" and r.records == ()
    asked = engine.handle(r.state, Command("device"), EN)
    started = tap(engine, asked.state, asked.replies[0], "iPhone")
    assert started.state.walk is not None and started.state.walk.entry == "backup_failed"
    assert [rec.outcome for rec in started.records] == [Outcome.STARTED]
    again = engine.handle(r.state, Command("device"), EN)  # still not for a Windows PC
    other = tap(engine, again.state, again.replies[0], "Windows")
    assert other.state.walk is None and other.records == ()
    assert "iCloud Backup" in other.replies[-1].text
