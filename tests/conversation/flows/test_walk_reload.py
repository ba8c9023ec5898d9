"""A walk whose knowledge a reload changed: removed fixes are passed over or end it."""

from __future__ import annotations

from pathlib import Path

from bot.content.knowledge import Device
from bot.conversation.callbacks import Action, Callback, decode, parse
from bot.conversation.engine import Engine
from bot.conversation.events import Tap, Text
from bot.conversation.state import Outcome, UserState, Walk
from tests.support.conversation import (
    EN,
    ENTRY,
    edited_engine,
    walk_at,
)
from tests.support.replies import button as data
from tests.support.replies import labels


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


def test_parse_reads_what_decode_would_reject(engine: Engine) -> None:
    raw = Callback(Action.NEXT, "gone_entry", Device.MAC, "gone_fix").encode()
    assert decode(raw, engine.knowledge) is None
    assert parse(raw) == Callback(Action.NEXT, "gone_entry", Device.MAC, "gone_fix")
    for bad in ("", "zz|a", "n|a|q|b", "n|a|i", "n||i|b", "l|fr"):
        assert parse(bad) is None
    handover = Callback(Action.HANDOVER, ENTRY, Device.WINDOWS).encode()
    assert decode(handover, engine.knowledge) == Callback(Action.HANDOVER, ENTRY, Device.WINDOWS)
