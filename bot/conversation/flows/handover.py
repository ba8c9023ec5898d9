"""A person takes over: the summary for the support group, the relay both ways, /done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.channels.limits import cut
from bot.content.knowledge import Device
from bot.content.languages import LANGUAGES
from bot.content.locales import Html
from bot.conversation.callbacks import Action, Callback
from bot.conversation.events import Attachment, Context, Tap, Text
from bot.conversation.render import bullet_list, quote
from bot.conversation.replies import Button, CopyToUser, Reply, Result, ToSupport
from bot.conversation.state import UserState

if TYPE_CHECKING:
    from bot.conversation.engine import ActionHandler, CommandHandler, Engine

HANDOVER = "handover"  # UserState.extra key while a person in the support group answers the user
WORDS = "words"  # UserState.extra key: what the user last typed, for the handover summary
WORDS_LIMIT = 500  # characters of it kept
RELAY_HEADROOM = 596  # UTF-16 units of a message kept for the header around a relayed text


def handed_over(state: UserState) -> bool:
    """Return True while a person in the support group answers this user."""
    return isinstance(state.extra.get(HANDOVER), dict)


def without_handover(state: UserState) -> UserState:
    """Return the state with the handover ended."""
    return state.with_(extra={k: v for k, v in state.extra.items() if k != HANDOVER})


def display_name(state: UserState, ctx: Context) -> str:
    """Return the user's name as the support group sees it."""
    return ctx.user_name.strip()[:64] or f"#{state.user_id}"


def info(eng: Engine, state: UserState, ctx: Context) -> tuple[str, str]:
    """Return the language and name the handover was opened with (for group messages)."""
    opened: dict[str, Any] = state.extra.get(HANDOVER) or {}
    lang = opened.get("lang")
    name = opened.get("name")
    return (
        lang if isinstance(lang, str) and lang in LANGUAGES else eng.lang(state, ctx),
        name if isinstance(name, str) and name else display_name(state, ctx),
    )


def ended_by_user_post(eng: Engine, state: UserState, ctx: Context) -> ToSupport:
    """Return the group notice that the user ended the conversation."""
    group_lang, name = info(eng, state, ctx)
    text = eng.t(group_lang, "handover.group_ended_by_user", name=name, user_id=state.user_id)
    return ToSupport(text, from_user=False)


def _on_handover(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """Talk to a person: post the summary to the support group and relay from now on."""
    assert cb.entry is not None and cb.device is not None
    lang = eng.lang(state, ctx)
    if not ctx.support:
        return Result(state, toast=eng.t(lang, "handover.unavailable"), alert=True)
    if handed_over(state):
        return Result(state, toast=eng.t(lang, "handover.already"), alert=True)
    name = display_name(state, ctx)
    opened = {"since": ctx.now, "lang": lang, "name": name}
    new_state = state.with_(extra={**state.extra, HANDOVER: opened})
    summary = _summary(eng, state, cb.entry, cb.device, ctx, lang, name)
    return Result(
        new_state,
        (Reply(eng.t(lang, "handover.started")),),
        toast=eng.t(lang, "toast.handover"),
        effects=(ToSupport(summary),),
    )


def _summary(
    eng: Engine, state: UserState, entry_id: str, device: Device, ctx: Context, lang: str, name: str
) -> Html:
    walk = state.walk
    if walk is not None and (walk.entry, walk.device) == (entry_id, device):
        tried: tuple[str, ...] = walk.path[: walk.position]
    else:  # the button of an earlier walk's end: every fix before the final step was tried
        tried = eng.knowledge.path_for(entry_id, device)[:-1]
    titles = tuple(eng.knowledge.fixes[f].title[lang] for f in tried if f in eng.knowledge.fixes)
    entry = eng.knowledge.entries.get(entry_id)
    none = eng.t(lang, "handover.nothing")
    words = state.extra.get(WORDS)
    return eng.t(
        lang,
        "handover.summary",
        name=name,
        username=f"@{ctx.user_handle}" if ctx.user_handle else none,
        user_id=state.user_id,
        language=lang,
        entry=entry.title[lang] if entry is not None else entry_id,
        device=eng.t(lang, f"device.{device.value}"),
        fixes=bullet_list(titles) if titles else none,
        words=quote(words, WORDS_LIMIT) if isinstance(words, str) and words else none,
    )


def relay(eng: Engine, state: UserState, event: Text | Attachment, ctx: Context) -> Result:
    """While handed over, what the user sends goes to the support group."""
    lang, name = info(eng, state, ctx)
    if isinstance(event, Text):
        text = cut(event.text.strip(), eng.limits.text - RELAY_HEADROOM)
        if not text:
            return Result(state)
        post = eng.t(lang, "handover.from_user", name=name, user_id=state.user_id, text=text)
        return Result(state, effects=(ToSupport(post),))
    post = eng.t(lang, "handover.from_user_attachment", name=name, user_id=state.user_id)
    return Result(state, effects=(ToSupport(post, copy_incoming=True),))


def done(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    """/done from the user: end the conversation with the person."""
    if not handed_over(state):
        return eng.say(state, ctx, "handover.not_active")
    return Result(
        without_handover(state),
        (Reply(eng.t(eng.lang(state, ctx), "handover.ended_by_user")),),
        effects=(ended_by_user_post(eng, state, ctx),),
    )


def from_support(eng: Engine, state: UserState, text: str | None, ctx: Context) -> Result:
    """An operator replied in the support group: text, or None for a photo, a file…"""
    lang, name = info(eng, state, ctx)
    if not handed_over(state):
        return _closed(eng, state, lang, name)
    if text is None:
        return Result(state, effects=(CopyToUser(),))
    text = cut(text.strip(), eng.limits.text - RELAY_HEADROOM)
    if not text:
        return Result(state)
    return Result(state, (Reply(eng.t(lang, "handover.from_support", text=text)),))


def support_done(eng: Engine, state: UserState, ctx: Context) -> Result:
    """An operator ended the handover with /done."""
    lang, name = info(eng, state, ctx)
    if not handed_over(state):
        return _closed(eng, state, lang, name)
    post = eng.t(lang, "handover.group_ended_by_support", name=name, user_id=state.user_id)
    return Result(
        without_handover(state),
        (Reply(eng.t(lang, "handover.ended_by_support")),),
        effects=(ToSupport(post, reply_to_incoming=True, from_user=False),),
    )


def support_unreachable(eng: Engine, state: UserState, ctx: Context) -> Result:
    """The support group could not be reached: end the handover, point to Apple."""
    lang, _ = info(eng, state, ctx)
    url = eng.knowledge.links["contact_support"][lang]
    rows = ((Button(eng.t(lang, "buttons.contact"), url=url),),)
    return Result(without_handover(state), (Reply(eng.t(lang, "handover.unreachable"), rows),))


def support_undelivered(eng: Engine, state: UserState, ctx: Context) -> Html:
    """Return the group notice that an operator's answer could not reach the user."""
    lang, name = info(eng, state, ctx)
    return eng.t(lang, "handover.undelivered", name=name, user_id=state.user_id)


def _closed(eng: Engine, state: UserState, lang: str, name: str) -> Result:
    post = eng.t(lang, "handover.group_closed", name=name, user_id=state.user_id)
    return Result(state, effects=(ToSupport(post, reply_to_incoming=True, from_user=False),))


COMMANDS: dict[str, CommandHandler] = {"done": done}
ACTIONS: dict[Action, ActionHandler] = {Action.HANDOVER: _on_handover}
