"""Driving the engine in tests: contexts, a walk to a given step, an edited knowledge base."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bot.app import build_engine
from bot.content.knowledge import Device
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Context, Tap, Text
from bot.conversation.replies import Reply, Result
from bot.conversation.state import UserState
from tests.support.paths import ROOT
from tests.support.replies import button, labels

EN = Context(now=1000.0, language_code="en")
JA = Context(now=1000.0, language_code="ja")
SUPPORT = Context(now=1000.0, language_code="en", support=True, user_name="Ann <Lee>")
ENTRY = "apple_id_server_error"


def tap(engine: Engine, state: UserState, reply: Reply, text: str, ctx: Context = EN) -> Result:
    """Press the button of `reply` whose label contains `text`."""
    return engine.handle(state, Tap(button(reply, text), message_id=7), ctx)


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
        examples = knowledge / "examples.yaml"  # its examples go with it (else: unknown id)
        pattern = rf"(?ms)^  {entry}:\n.*?(?=^  \S|\Z)"
        examples.write_text(re.sub(pattern, "", examples.read_text("utf-8"), count=1))
    return build_engine(knowledge, ROOT / "locales")


def walk_at(engine: Engine, user: int, position: int, device: Device = Device.IPHONE) -> Result:
    """Start a walk of ENTRY and step to `position`."""
    result = engine.handle(UserState(user, device=device), Command("start", ENTRY), EN)
    for _ in range(position):
        result = engine.handle(result.state, Tap(button(result.replies[0], "Next fix"), 1), EN)
    return result


def exhausted(engine: Engine, user: int, ctx: Context = SUPPORT) -> Result:
    """Walk verification_failed on Windows to its final step (every fix answered Next)."""
    state = UserState(user, device=Device.WINDOWS)
    result = engine.handle(state, Text("verification failed & <stuck>"), ctx)
    for _ in range(40):  # bounded: no path is this long
        if "Next fix" not in " ".join(labels(result.replies[0])):
            break
        result = engine.handle(result.state, Tap(button(result.replies[0], "Next fix"), 1), ctx)
    walk = result.state.walk
    assert walk is not None and walk.position == len(walk.path) - 1
    return result
