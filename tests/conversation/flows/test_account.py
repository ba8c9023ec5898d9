"""The user's commands and settings: /start deep links, /reset, /lang, /device, /forget."""

from __future__ import annotations

from bot.content.knowledge import Device
from bot.conversation.callbacks import Action, Callback
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Tap, Text
from bot.conversation.flows.handover import WORDS
from bot.conversation.replies import Forget, ToSupport
from bot.conversation.state import Outcome, UserState
from tests.support.conversation import (
    EN,
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
