"""Questions about the article's other facts: iCloud+ prices, contacting Apple, is iCloud down…

A topic of knowledge/info.yaml with `patterns` is recognised like an entry (the matcher says
`topic`); its answer is shown without touching a walk in progress, and /help lists them all as
buttons. "Is iCloud down?" answers with Apple's live status, as the first step of a walk does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.apple_status.report import STATUS_FIX, relevant, status_html
from bot.content.locales import Html
from bot.conversation.callbacks import Action, Callback, decode
from bot.conversation.events import Context, Event, Tap, Text
from bot.conversation.render import topic_text
from bot.conversation.replies import Button, Keyboard, Reply, Result
from bot.conversation.state import UserState

if TYPE_CHECKING:
    from bot.conversation.engine import ActionHandler, Engine

LIVE_STATUS = "icloud_status"  # the topic answered with Apple's live status
CONTACT = "contact_apple"  # the topic answered with Apple's contact page


def asked(eng: Engine) -> tuple[str, ...]:
    """Return the topics people ask about (those with patterns), in info.yaml order."""
    return tuple(tid for tid, topic in eng.knowledge.topics.items() if topic.patterns)


def show(eng: Engine, state: UserState, topic_id: str, ctx: Context, *, edit: bool) -> Result:
    """Answer a question about a topic; a walk in progress stays where it is."""
    lang = eng.lang(state, ctx)
    text = topic_text(eng.knowledge, lang, topic_id)
    rows: list[tuple[Button, ...]] = []
    if topic_id == LIVE_STATUS:
        if ctx.status is not None:
            live = relevant(ctx.status, eng.status_services.names_for(topic_id))
            if live is not None:
                text = Html(text + "\n\n" + status_html(eng.locales, lang, live))
        link = eng.knowledge.fixes[STATUS_FIX].link if STATUS_FIX in eng.knowledge.fixes else None
        if link is not None:
            rows.append((Button(link.label[lang], url=link.url[lang]),))
    if topic_id == CONTACT and "contact_support" in eng.knowledge.links:
        url = eng.knowledge.links["contact_support"][lang]
        rows.append((Button(eng.t(lang, "buttons.contact"), url=url),))
    rows.append((eng.restart_button(lang),))
    return Result(state, (Reply(text, tuple(rows), edit=edit),))


def wants_status(eng: Engine, event: Event, result: Result) -> bool:
    """Tell whether the reply answers "is iCloud down?" (then the feed is fetched first)."""
    if isinstance(event, Tap):
        cb = decode(event.data, eng.knowledge)
        return cb is not None and cb.action is Action.TOPIC and cb.topic == LIVE_STATUS
    if isinstance(event, Text):
        # The answer to "is iCloud down?" is the one reply that links Apple's status page
        # without carrying a walk's buttons (the walk's own status step is status.py's).
        link = eng.knowledge.fixes[STATUS_FIX].link if STATUS_FIX in eng.knowledge.fixes else None
        status_urls = set(link.url.values()) if link is not None else set()
        return any(
            not reply.anchor and any(b.url in status_urls for row in reply.buttons for b in row)
            for reply in result.replies
        )
    return False


def help_buttons(eng: Engine, lang: str) -> Keyboard:
    """Return one button per topic people ask about, two to a row."""
    buttons = [
        Button(eng.knowledge.topics[tid].title[lang], Callback(Action.TOPIC, topic=tid).encode())
        for tid in asked(eng)
    ]
    return tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))


def _on_topic(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    assert cb.topic is not None
    return show(eng, state, cb.topic, ctx, edit=False)


ACTIONS: dict[Action, ActionHandler] = {Action.TOPIC: _on_topic}
