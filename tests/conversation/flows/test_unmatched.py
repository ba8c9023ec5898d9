"""Questions that match nothing get the common errors."""

from __future__ import annotations

from bot.conversation.engine import Engine
from bot.conversation.events import Text
from bot.conversation.state import UserState
from tests.support.conversation import (
    EN,
)


def test_unrelated_text_gets_help_and_common_errors(engine: Engine) -> None:
    r = engine.handle(UserState(6), Text("hello"), EN)
    [reply] = r.replies
    assert r.state.walk is None
    assert len(reply.buttons) >= 3
    for row in reply.buttons:
        cb = row[0].data
        assert cb is not None and cb.startswith("e|")
    assert "/help" in reply.text
