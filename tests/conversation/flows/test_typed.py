"""Replies typed during a walk, and answers in the language the user writes in."""

from __future__ import annotations

import pytest

from bot.content.knowledge import Device
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Context, Text
from bot.conversation.state import Outcome, UserState
from tests.support.conversation import EN, JA
from tests.support.replies import labels

ERROR_EN = "There was an error connecting to the Apple ID server."


def walking(engine: Engine, ctx: Context = EN, steps: int = 1) -> UserState:
    """A user on an iPhone, `steps` fixes into the Apple ID server error's walk."""
    r = engine.handle(UserState(7, device=Device.IPHONE), Text(ERROR_EN), ctx)
    state = r.state
    for _ in range(steps - 1):
        state = engine.handle(state, Text("didn't work"), ctx).state
    assert state.walk is not None and state.walk.position == steps - 1
    return state


@pytest.mark.parametrize("text", ["didn't work", "still the same", "ダメでした", "変わらない"])
def test_a_failure_in_words_is_next(engine: Engine, text: str) -> None:
    state = walking(engine)
    r = engine.handle(state, Text(text), EN)
    assert r.state.walk is not None and r.state.walk.position == 1
    assert [rec.outcome for rec in r.records] == [Outcome.NEXT]
    [reply] = r.replies
    assert not reply.edit and reply.anchor  # below the user's words, with the buttons
    assert "2/" in reply.text


@pytest.mark.parametrize("text", ["it works now", "that fixed it", "直りました", "解決しました"])
def test_a_success_in_words_is_solved(engine: Engine, text: str) -> None:
    state = walking(engine, steps=2)
    r = engine.handle(state, Text(text), EN)
    assert r.state.walk is None
    assert [rec.outcome for rec in r.records] == [Outcome.SOLVED]
    assert r.toast is None and not r.replies[0].edit


@pytest.mark.parametrize("text", ["back", "戻る"])
def test_back_in_words(engine: Engine, text: str) -> None:
    state = walking(engine, steps=3)
    r = engine.handle(state, Text(text), EN)
    assert r.state.walk is not None and r.state.walk.position == 1


def test_back_on_the_first_step_says_so_in_a_message(engine: Engine) -> None:
    r = engine.handle(walking(engine), Text("go back"), EN)
    assert r.state.walk is not None and r.state.walk.position == 0
    [reply] = r.replies
    assert "first" in reply.text.lower() and r.toast is None


@pytest.mark.parametrize("text", ["2", "hmm", "🙂", "wait"])
def test_anything_else_keeps_the_walk_and_shows_the_step_again(engine: Engine, text: str) -> None:
    state = walking(engine, steps=2)
    r = engine.handle(state, Text(text), EN)
    assert r.state.walk == state.walk  # "2" never restarts the walk
    [reply] = r.replies
    assert "not sure what you mean" in reply.text and "2/" in reply.text
    assert "Next fix" in " ".join(labels(reply))
    assert r.records == ()


def test_a_new_problem_mid_walk_opens_it(engine: Engine) -> None:
    state = walking(engine, steps=2)
    r = engine.handle(state, Text("now my iCloud Mail won't send or receive email"), EN)
    assert r.state.walk is not None and r.state.walk.entry == "mail_not_working"


def test_a_japanese_message_gets_a_japanese_answer_in_an_english_client(engine: Engine) -> None:
    r = engine.handle(UserState(8, device=Device.MAC), Text("iCloudに接続できません"), EN)
    assert "ステップ" in r.replies[0].text
    # Buttons tapped later keep the language the user writes in.
    r2 = engine.handle(r.state, Text("ダメでした"), EN)
    assert "ステップ 2/" in r2.replies[0].text


def test_lang_chosen_with_the_command_wins_over_the_written_language(engine: Engine) -> None:
    state = engine.handle(UserState(9), Command("lang", "en"), JA).state
    r = engine.handle(state.with_(device=Device.MAC), Text("iCloudに接続できません"), JA)
    assert "Step 1/" in r.replies[0].text


def test_an_english_message_gets_an_english_answer_in_a_japanese_client(engine: Engine) -> None:
    r = engine.handle(UserState(10, device=Device.MAC), Text("Cannot connect to iCloud"), JA)
    assert "Step 1/" in r.replies[0].text
