"""The engine's routing: every command and action reaches a flow; odd events get an answer."""

from __future__ import annotations

import pytest

from bot.content.knowledge import Device
from bot.conversation.callbacks import Action
from bot.conversation.engine import ACTIONS, COMMANDS, MENU, Engine, _merge
from bot.conversation.events import Attachment, Command, Tap, Text
from bot.conversation.state import UserState
from tests.support.conversation import (
    EN,
    JA,
)


@pytest.mark.parametrize("name", ["start", "help", "reset", "lang", "device", "frobnicate"])
def test_commands_answer(engine: Engine, name: str) -> None:
    for ctx in (EN, JA):
        r = engine.handle(UserState(9), Command(name), ctx)
        assert r.replies and r.replies[0].text.strip()


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


def test_every_button_action_is_handled_by_exactly_one_flow() -> None:
    assert set(ACTIONS) == set(Action)  # a new Action without a flow would answer "stale"


def test_every_menu_command_is_routed() -> None:
    assert set(MENU) <= set(COMMANDS)
    assert {"done", "reload", "stats"} <= set(COMMANDS)


def test_two_flows_claiming_one_command_is_refused() -> None:
    with pytest.raises(ValueError, match="start"):
        _merge({"start": 1}, {"start": 2})
