"""The engine's side of the operators' tools: reloads, a person taking over, /forget."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import build_engine
from bot.content.knowledge import Device
from bot.conversation.callbacks import Action, Callback, decode, parse
from bot.conversation.engine import (
    HANDOVER,
    WORDS,
    Attachment,
    Command,
    Context,
    CopyToUser,
    Engine,
    Forget,
    Reload,
    Result,
    Tap,
    Text,
    ToSupport,
)
from bot.conversation.state import Outcome, UserState, Walk
from tests.support.paths import ROOT
from tests.support.replies import button as data
from tests.support.replies import labels

EN = Context(now=1000.0, language_code="en")
SUPPORT = Context(now=1000.0, language_code="en", support=True, user_name="Ann <Lee>")
ENTRY = "apple_id_server_error"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(ROOT / "knowledge", ROOT / "locales")


def edited_engine(tmp_path: Path, *, fix: str | None = None, entry: str | None = None) -> Engine:
    """An engine over a copy of the knowledge base without one fix or one entry."""
    knowledge = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    if fix is not None:
        entries = knowledge / "entries.yaml"
        entries.write_text(re.sub(rf"(?m)^\s*- {fix}\s*\n", "", entries.read_text("utf-8")))
        fixes = knowledge / "fixes.yaml"
        pattern = rf"(?ms)^  - id: {fix}\n.*?(?=^  - id: |^  # -)"
        fixes.write_text(re.sub(pattern, "", fixes.read_text("utf-8"), count=1))
    if entry is not None:
        entries = knowledge / "entries.yaml"
        pattern = rf"(?ms)^  - id: {entry}\n.*?(?=^  - id: |\Z)"
        entries.write_text(re.sub(pattern, "", entries.read_text("utf-8"), count=1))
    return build_engine(knowledge, ROOT / "locales")


def walk_at(engine: Engine, user: int, position: int, device: Device = Device.IPHONE) -> Result:
    """Start a walk of ENTRY and step to `position`."""
    result = engine.handle(UserState(user, device=device), Command("start", ENTRY), EN)
    for _ in range(position):
        result = engine.handle(result.state, Tap(data(result.replies[0], "Next fix"), 1), EN)
    return result


def exhausted(engine: Engine, user: int, ctx: Context = SUPPORT) -> Result:
    state = UserState(user, device=Device.WINDOWS)
    result = engine.handle(state, Text("verification failed & <stuck>"), ctx)
    for _ in range(40):  # bounded: no path is this long
        if "Next fix" not in " ".join(labels(result.replies[0])):
            break
        result = engine.handle(result.state, Tap(data(result.replies[0], "Next fix"), 1), ctx)
    assert result.state.walk is not None and result.state.walk.done
    return result


# ------------------------------------------------------------------ reload


def test_reload_is_for_admins_only(engine: Engine) -> None:
    unknown = engine.handle(UserState(1), Command("frobnicate"), EN)
    refused = engine.handle(UserState(1), Command("reload"), EN)
    assert refused.replies[0].text == unknown.replies[0].text.replace("frobnicate", "reload")
    assert refused.effects == ()
    admin = engine.handle(UserState(1, lang="ja"), Command("reload"), replace(EN, is_admin=True))
    assert admin.effects == (Reload("ja"),) and admin.replies == ()


def test_reload_report_is_escaped_and_split(engine: Engine) -> None:
    problems = [f"entries.yaml:{n}: unknown fix 'x_<{n}>' & more" for n in range(400)]
    replies = engine.reload_refused("en", problems)
    assert 1 < len(replies) <= 5
    assert "Reload refused" in replies[0].text and "400 problem(s)" in replies[0].text
    for reply in replies:
        assert len(reply.text.encode("utf-16-le")) // 2 <= 4096
        assert "<0>" not in reply.text and "&lt;0&gt;" in replies[0].text
    assert "more." in replies[-1].text  # what did not fit is counted
    [one] = engine.reload_refused("ja", ["a.yaml:1: bad"])
    assert "a.yaml:1: bad" in one.text
    assert f"{len(engine.knowledge.entries)} entries" in engine.reloaded("en").text


# ------------------------------------------------------------------ walks across a reload


def test_a_removed_next_fix_is_skipped_with_a_note(engine: Engine, tmp_path: Path) -> None:
    before = walk_at(engine, 1, 0)
    walk = before.state.walk
    assert walk is not None and walk.path[1] == "check_internet"
    after = edited_engine(tmp_path, fix="check_internet")
    r = after.handle(before.state, Tap(data(before.replies[0], "Next fix"), 1), EN)
    assert r.state.walk is not None and r.state.walk.fix == walk.path[2]
    assert r.state.walk.path == walk.path  # the walk keeps its own path
    text = r.replies[0].text
    assert "step was removed" in text and f"Step 2/{len(walk.path) - 1}" in text
    assert [(rec.fix, rec.outcome) for rec in r.records] == [("check_apple_status", Outcome.NEXT)]
    back = after.handle(r.state, Tap(data(r.replies[0], "Back"), 1), EN)  # passes over it
    assert back.state.walk is not None and back.state.walk.position == 0
    assert "Back" not in " ".join(labels(back.replies[0]))  # the first fix that exists


def test_buttons_naming_a_removed_fix(engine: Engine, tmp_path: Path) -> None:
    at_removed = walk_at(engine, 2, 1)  # showing check_internet
    shown = at_removed.replies[0]
    after = edited_engine(tmp_path, fix="check_internet")
    assert decode(data(shown, "Next fix"), after.knowledge) is None
    # The walk in progress carries on…
    r = after.handle(at_removed.state, Tap(data(shown, "Next fix"), 1), EN)
    assert r.state.walk is not None and r.state.walk.position == 2 and not r.toast
    solved = after.handle(at_removed.state, Tap(data(shown, "Solved"), 1), EN)
    assert "a step that has since been removed" in solved.replies[0].text
    assert solved.state.walk is None
    # …but on a message of another walk the button is stale.
    other = after.handle(at_removed.state, Text("Verification failed"), EN)
    stale = after.handle(other.state, Tap(data(shown, "Next fix"), 1), EN)
    assert stale.alert and stale.toast and "out of date" in stale.toast
    assert stale.state == other.state and not stale.replies


def test_a_walk_whose_entry_was_removed_ends_politely(engine: Engine, tmp_path: Path) -> None:
    state = UserState(3, device=Device.MAC)
    r = engine.handle(state, Text("Verification failed"), EN)
    assert r.state.walk is not None
    after = edited_engine(tmp_path, entry="verification_failed")
    ended = after.handle(r.state, Tap(data(r.replies[0], "Next fix"), 1), EN)
    assert ended.state.walk is None
    assert "no longer have instructions" in ended.replies[0].text
    assert [rec.outcome for rec in ended.records] == [Outcome.ABANDONED]


def test_every_fix_after_the_current_removed_ends_the_walk(engine: Engine) -> None:
    state = UserState(4, device=Device.IPHONE)
    path = ("check_apple_status", "gone_1", "gone_2")
    state = state.with_(walk=Walk(ENTRY, Device.IPHONE, path, 0, 5, 1.0))
    tap = Tap(Callback(Action.NEXT, ENTRY, Device.IPHONE, "check_apple_status").encode(), 5)
    r = engine.handle(state, tap, EN)
    assert r.state.walk is not None and r.state.walk.done
    assert "tried every fix" in r.replies[0].text
    show = Tap(Callback(Action.SHOW, ENTRY, Device.IPHONE, "gone_2").encode(), 5)
    back = engine.handle(r.state, show, EN)  # Back from the end: to the last fix that exists
    assert back.state.walk is not None and back.state.walk.fix == "check_apple_status"
    assert "step was removed" in back.replies[0].text


# ------------------------------------------------------------------ a person takes over


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


# ------------------------------------------------------------------ /forget


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


def test_parse_reads_what_decode_would_reject(engine: Engine) -> None:
    raw = Callback(Action.NEXT, "gone_entry", Device.MAC, "gone_fix").encode()
    assert decode(raw, engine.knowledge) is None
    assert parse(raw) == Callback(Action.NEXT, "gone_entry", Device.MAC, "gone_fix")
    for bad in ("", "zz|a", "n|a|q|b", "n|a|i", "n||i|b", "l|fr"):
        assert parse(bad) is None
    handover = Callback(Action.HANDOVER, ENTRY, Device.WINDOWS).encode()
    assert decode(handover, engine.knowledge) == Callback(Action.HANDOVER, ENTRY, Device.WINDOWS)


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
