"""A person takes over: the summary, the relay both ways, /done from either side."""

from __future__ import annotations

from bot.content.knowledge import Device
from bot.conversation.callbacks import Action, Callback
from bot.conversation.engine import Engine
from bot.conversation.events import Attachment, Command, Context, Tap, Text
from bot.conversation.flows.handover import HANDOVER, WORDS
from bot.conversation.replies import CopyToUser, ToSupport
from bot.conversation.state import UserState
from tests.support.conversation import (
    EN,
    SUPPORT,
    exhausted,
)
from tests.support.replies import button as data
from tests.support.replies import labels


def test_the_last_step_offers_a_person_only_with_a_support_group(engine: Engine) -> None:
    without = exhausted(engine, 10, EN)
    assert not any("person" in label for label in labels(without.replies[0]))
    tap = Tap(Callback(Action.HANDOVER, "verification_failed", Device.WINDOWS).encode(), 1)
    refused = engine.handle(without.state, tap, EN)
    assert refused.alert and refused.effects == ()
    assert HANDOVER not in refused.state.extra
    offered = exhausted(engine, 10)
    assert "🙋 Talk to a person" in labels(offered.replies[0])
    assert "https://support.apple.com/contact" in [
        b.url for row in offered.replies[0].buttons for b in row
    ]


def test_handover_summary_relay_and_end_by_user(engine: Engine) -> None:
    r = exhausted(engine, 11)
    walk = r.state.walk
    assert walk is not None
    r = engine.handle(r.state, Tap(data(r.replies[0], "Talk to a person"), 1), SUPPORT)
    assert r.state.extra[HANDOVER]["name"] == "Ann <Lee>"
    assert "passed your case" in r.replies[0].text
    [post] = r.effects
    assert isinstance(post, ToSupport) and post.from_user
    summary = post.text
    assert "#user11" in summary and "Ann &lt;Lee&gt;" in summary
    assert "verification failed &amp; &lt;stuck&gt;" in summary  # their own words, escaped
    assert "Check Apple System Status" in summary and "Windows" in summary
    assert engine.knowledge.entries["verification_failed"].title["en"] in summary

    again = engine.handle(
        r.state, Tap(data(exhausted(engine, 11).replies[0], "person"), 1), SUPPORT
    )
    assert again.toast and again.effects == ()  # already talking to a person

    text = engine.handle(r.state, Text("Verification failed, <still>"), SUPPORT)
    assert text.replies == () and text.state.walk == r.state.walk  # not matched
    [relay] = text.effects
    assert isinstance(relay, ToSupport) and "Verification failed, &lt;still&gt;" in relay.text
    photo = engine.handle(r.state, Attachment("photo"), SUPPORT)
    [copy] = photo.effects
    assert isinstance(copy, ToSupport) and copy.copy_incoming

    done = engine.handle(r.state, Command("done"), SUPPORT)
    assert HANDOVER not in done.state.extra
    assert "has ended" in done.replies[0].text
    [notice] = done.effects
    assert isinstance(notice, ToSupport) and "ended the conversation" in notice.text
    assert "nothing to end" in engine.handle(done.state, Command("done"), SUPPORT).replies[0].text


def test_operator_side(engine: Engine) -> None:
    r = exhausted(engine, 12)
    r = engine.handle(r.state, Tap(data(r.replies[0], "Talk to a person"), 1), SUPPORT)
    operator = Context(now=2000.0, support=True)
    answer = engine.from_support(r.state, "Try <this> & that", operator)
    assert "Try &lt;this&gt; &amp; that" in answer.replies[0].text
    assert answer.state == r.state
    assert engine.from_support(r.state, None, operator).effects == (CopyToUser(),)
    assert engine.from_support(r.state, "x" * 5000, operator).replies[0].text.count("x") == 3500
    done = engine.support_done(r.state, operator)
    assert HANDOVER not in done.state.extra and "Our team has ended" in done.replies[0].text
    [notice] = done.effects
    assert isinstance(notice, ToSupport) and notice.reply_to_incoming and not notice.from_user
    late = engine.from_support(done.state, "hello?", operator)
    assert late.replies == ()
    [closed] = late.effects
    assert isinstance(closed, ToSupport) and "not delivered" in closed.text
    unreachable = engine.support_unreachable(r.state, operator)
    assert HANDOVER not in unreachable.state.extra
    assert "could not reach" in unreachable.replies[0].text
    assert "#user12" in engine.support_undelivered(r.state, operator)


def test_handover_ends_when_the_support_group_is_unset(engine: Engine) -> None:
    r = exhausted(engine, 13)
    r = engine.handle(r.state, Tap(data(r.replies[0], "Talk to a person"), 1), SUPPORT)
    back = engine.handle(r.state, Text("Verification failed"), EN)  # support off now
    assert HANDOVER not in back.state.extra
    assert back.effects == () and "I think this is" in back.replies[0].text


def test_the_users_words_are_kept_for_the_summary(engine: Engine) -> None:
    r = engine.handle(UserState(14), Text("  " + "y" * 900), EN)
    assert r.state.extra[WORDS] == "y" * 500


def test_starting_over_also_ends_a_handover(engine: Engine) -> None:
    r = exhausted(engine, 15)
    r = engine.handle(r.state, Tap(data(r.replies[0], "Talk to a person"), 1), SUPPORT)
    over = engine.handle(r.state, Command("reset"), SUPPORT)
    assert HANDOVER not in over.state.extra and over.state.walk is None
    assert "start over" in over.replies[0].text
    [notice] = over.effects
    assert isinstance(notice, ToSupport) and "ended the conversation" in notice.text
    plain = engine.handle(over.state, Command("reset"), SUPPORT)
    assert plain.effects == ()


def test_talk_to_a_person_only_from_the_end_of_a_walk_the_user_reached(engine: Engine) -> None:
    ctx = Context(now=1000.0, language_code="en", support=True)
    forged = Tap(Callback(Action.HANDOVER, "cannot_connect_icloud", Device.MAC).encode())
    # No walk at all: a forged or very old button.
    r = engine.handle(UserState(31), forged, ctx)
    assert r.effects == () and r.alert and "end of a walk" in (r.toast or "")
    # A walk at its first step: not yet.
    state = engine.handle(UserState(31, device=Device.MAC), Text("Cannot connect to iCloud"), ctx)
    r = engine.handle(state.state, forged, ctx)
    assert r.effects == () and HANDOVER not in r.state.extra
    # At the end of that walk: yes, once.
    at_end = state.state
    for _ in range(40):
        if at_end.walk is None or at_end.walk.position == len(at_end.walk.path) - 1:
            break
        at_end = engine.handle(at_end, Text("didn't work"), ctx).state
    r = engine.handle(at_end, forged, ctx)
    assert any(isinstance(e, ToSupport) for e in r.effects)
    again = engine.handle(r.state, forged, ctx)
    assert again.effects == () and again.alert
