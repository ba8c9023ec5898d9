"""The admins' commands: /reload (admins only) and the reload report."""

from __future__ import annotations

from dataclasses import replace

from bot.conversation.engine import Engine
from bot.conversation.events import Command
from bot.conversation.replies import Reload
from bot.conversation.state import UserState
from tests.support.conversation import (
    EN,
)


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
