"""Questions about the article's other facts, in words or from /help."""

from __future__ import annotations

import pytest

from bot.apple_status.report import parse_feed
from bot.content.knowledge import Device
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Context, Tap, Text
from bot.conversation.state import UserState
from tests.support.conversation import EN, JA
from tests.support.replies import button, labels, urls


@pytest.mark.parametrize(
    ("text", "ctx", "needle"),
    [
        ("How much does iCloud+ cost?", EN, "iCloud+"),
        ("iCloud+の料金はいくら?", JA, "iCloud+"),
        ("How do I contact Apple Support?", EN, "Apple"),
        ("2ファクタ認証のコードが届かない", JA, ""),
    ],
)
def test_questions_find_their_answers(engine: Engine, text: str, ctx: Context, needle: str) -> None:
    r = engine.handle(UserState(1, device=Device.IPHONE), Text(text), ctx)
    [reply] = r.replies
    assert needle in reply.text
    assert "could not recognise" not in reply.text and "認識できません" not in reply.text


def test_contacting_apple_has_the_contact_page(engine: Engine) -> None:
    r = engine.handle(UserState(1), Text("How do I contact Apple Support?"), EN)
    assert "https://support.apple.com/contact" in urls(r.replies[0])


def test_a_topic_mid_walk_leaves_the_walk_where_it_was(engine: Engine) -> None:
    state = engine.handle(
        UserState(2, device=Device.MAC), Text("Cannot connect to iCloud"), EN
    ).state
    r = engine.handle(state, Text("How much does iCloud+ cost?"), EN)
    assert r.state.walk == state.walk
    assert r.records == ()


def test_is_icloud_down_shows_the_live_status(engine: Engine) -> None:
    event = Text("Is iCloud down?")
    first = engine.handle(UserState(3), event, EN)
    assert engine.wants_status(event, first)  # the channel fetches the feed, then asks again
    feed = parse_feed(
        '{"services": [{"serviceName": "iCloud Mail", "events": []},'
        ' {"serviceName": "iCloud Account & Sign In", "events": []}]}'
    )
    ctx = Context(now=1000.0, language_code="en", status=feed)
    [reply] = engine.handle(UserState(3), event, ctx).replies
    assert "systemstatus" in " ".join(urls(reply))
    assert len(reply.text) > len(first.replies[0].text)  # the live part was added


def test_help_lists_the_topics_as_buttons(engine: Engine) -> None:
    [reply] = engine.handle(UserState(4), Command("help"), EN).replies
    assert "How to use this bot" in reply.text
    assert "Is iCloud down?" in labels(reply)
    r = engine.handle(UserState(4), Tap(button(reply, "Is iCloud down?")), EN)
    assert "System Status" in r.replies[0].text or "systemstatus" in " ".join(urls(r.replies[0]))


def test_a_forged_topic_button_is_stale(engine: Engine) -> None:
    r = engine.handle(UserState(5), Tap("t|no_such_topic"), EN)
    assert r.toast or r.replies
