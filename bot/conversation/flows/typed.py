"""Replies typed during a walk: "didn't work" is Next, 「直りました」 is Solved, "back" is Back.

People answer "Did this fix it?" in words as often as with the buttons. A text that names a
new problem still opens that problem (walk.on_text decides that first); a text that is neither
gets a short hint and the step again, below it, so the buttons are at hand, and the walk stays
where it was (typing "2" never restarts it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bot.content.intents import Intent
from bot.content.locales import Html
from bot.conversation.callbacks import Action, Callback
from bot.conversation.events import Context, Tap
from bot.conversation.replies import Reply, Result
from bot.conversation.state import UserState
from bot.conversation.steps import fix_reply, is_final

if TYPE_CHECKING:
    from bot.conversation.engine import Engine

ACTIONS_OF: dict[Intent, Action] = {
    Intent.NEXT: Action.NEXT,
    Intent.SOLVED: Action.SOLVED,
    Intent.BACK: Action.BACK,
}


def in_walk(state: UserState) -> bool:
    """Tell whether a fix of a walk is on screen, waiting for "did this fix it?".

    The final step (contact Apple, ask the administrator) asks nothing: what is typed there is
    read as a new question.
    """
    walk = state.walk
    return walk is not None and not walk.done and walk.fix is not None and not is_final(walk)


def answer(eng: Engine, state: UserState, text: str, ctx: Context) -> Result | None:
    """Carry out a typed Next / Solved / Back on the walk; None if the text is none of them."""
    from bot.conversation.flows.walk import on_walk_tap

    walk = state.walk
    if eng.intents is None or walk is None or walk.fix is None:
        return None
    found = eng.intents.classify(text)
    if found.intent is None or found.intent not in ACTIONS_OF:
        return None
    cb = Callback(ACTIONS_OF[found.intent], walk.entry, walk.device, walk.fix)
    return as_typed(on_walk_tap(eng, state, cb, Tap(cb.encode(), walk.message_id), ctx))


def device_answer(eng: Engine, state: UserState, text: str, ctx: Context) -> Result | None:
    """Carry out "iPhone", 「Macです」 typed while the device question waits, as its button."""
    from bot.conversation.flows.walk import on_device

    pending = eng.knowledge.entries.get(state.pending_entry or "")
    if pending is None or (state.walk is not None and not state.walk.done):
        return None
    device = eng.detect_device(text)
    if device is None:
        return None
    cb = Callback(Action.DEVICE, pending.id, device)
    return as_typed(on_device(eng, state, cb, Tap(cb.encode()), ctx))


def as_typed(result: Result) -> Result:
    """Turn the answer to a button press into the answer to a typed message.

    It goes below what the user typed, not into the message above it; a notice that would have
    answered a button press ("this is the first step") becomes a message.
    """
    replies = tuple(replace(reply, edit=False) for reply in result.replies)
    if not replies and result.toast:
        replies = (Reply(Html(result.toast)),)
    return replace(result, replies=replies, toast=None, alert=False)


def not_understood(eng: Engine, state: UserState, ctx: Context) -> Result:
    """Say how to answer, and show the step again with its buttons."""
    walk = state.walk
    assert walk is not None
    lang = eng.lang(state, ctx)
    step = fix_reply(eng, walk, lang, ctx, edit=False)
    hint = eng.t(lang, "walk.typed_unknown")
    return Result(state, (replace(step, text=Html(hint + "\n\n" + step.text)),))
