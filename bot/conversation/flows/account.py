"""The user's own settings and commands: /start /help /reset /lang /device /forget."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bot.content.languages import LANGUAGES
from bot.conversation.callbacks import Action, Callback
from bot.conversation.events import Context, Tap
from bot.conversation.flows import handover, walk
from bot.conversation.replies import Button, Effect, Forget, Keyboard, Reply, Result
from bot.conversation.state import UserState

if TYPE_CHECKING:
    from bot.conversation.engine import ActionHandler, CommandHandler, Engine


def _start(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    if arg in eng.knowledge.entries:  # deep link: t.me/<bot>?start=<entry_id>
        return walk.open_entry(eng, state, arg, ctx, edit=False)
    return eng.say(state, ctx, "welcome")


def _help(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    return eng.say(state, ctx, "help")


def _reset(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    return restart(eng, state, ctx)


def restart(eng: Engine, state: UserState, ctx: Context) -> Result:
    """Start over: leave the walk (and a conversation with a person) and wait for an error."""
    records = eng.abandon(state, ctx)
    new_state = state.with_(walk=None, pending_entry=None)
    reply = Reply(eng.t(eng.lang(state, ctx), "restart"))
    if handover.handed_over(state):  # starting over also ends a conversation with a person
        ended = handover.done(eng, new_state, "", ctx)
        return replace(ended, replies=(reply,), records=records)
    return Result(new_state, (reply,), records)


def _lang(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    arg = arg.lower()
    if arg in LANGUAGES:
        return Result(state.with_(lang=arg), (Reply(eng.t(arg, "lang.set")),))
    rows: Keyboard = (
        tuple(Button(row.name, Callback(Action.LANG, lang=row.code).encode()) for row in LANGUAGES),
    )
    return Result(state, (Reply(eng.t(eng.lang(state, ctx), "lang.ask"), rows),))


def _device(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    lang = eng.lang(state, ctx)
    current = eng.t(lang, f"device.{state.device.value}" if state.device else "device.unknown")
    rows = eng.device_buttons(lang, lambda d: Callback(Action.SET_DEVICE, device=d))
    return Result(state, (Reply(eng.t(lang, "device.ask", device=current), rows),))


def _forget(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    lang = eng.lang(state, ctx)
    rows: Keyboard = (
        (
            Button(eng.t(lang, "buttons.forget"), Callback(Action.FORGET).encode()),
            Button(eng.t(lang, "buttons.keep"), Callback(Action.KEEP).encode()),
        ),
    )
    return Result(state, (Reply(eng.t(lang, "forget.ask"), rows),))


# --------------------------------------------------------------------------- buttons


def _on_restart(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    return restart(eng, state, ctx)


def _on_lang(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    assert cb.lang is not None
    return Result(state.with_(lang=cb.lang), (Reply(eng.t(cb.lang, "lang.set"), edit=True),))


def _on_set_device(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """Remember the device; redraw a walk in progress, or start the entry waiting for it."""
    assert cb.device is not None
    lang = eng.lang(state, ctx)
    label = eng.t(lang, f"device.{cb.device.value}")
    said = Reply(eng.t(lang, "device.set", device=label), edit=True)
    changed = state.device is not cb.device
    state = state.with_(device=cb.device)
    current = state.walk
    entries = eng.knowledge.entries
    if current is not None and not current.done and current.entry in entries:
        if current.device is cb.device:
            return Result(state, (said,))
        then = walk.redraw(eng, state, cb.device, ctx)
    elif (pending := entries.get(state.pending_entry or "")) is not None and (
        changed or current is None
    ):
        then = walk.begin(eng, state, pending, cb.device, ctx, edit=False)
    else:
        return Result(state, (said,))
    return replace(then, replies=(said, *then.replies))


def _on_forget(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """Confirmed /forget: delete everything (the channel does it), telling the group if needed."""
    effects: list[Effect] = []
    if handover.handed_over(state):
        effects.append(handover.ended_by_user_post(eng, state, ctx))
    effects.append(Forget(eng.t(eng.lang(state, ctx), "forget.done")))
    return Result(UserState(state.user_id), effects=tuple(effects))


def _on_change_device(
    eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context
) -> Result:
    """The "Change device" button under a walk: the /device question."""
    return _device(eng, state, "", ctx)


def _on_keep(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    return Result(state, (Reply(eng.t(eng.lang(state, ctx), "forget.kept"), edit=True),))


COMMANDS: dict[str, CommandHandler] = {
    "start": _start,
    "help": _help,
    "reset": _reset,
    "lang": _lang,
    "device": _device,
    "forget": _forget,
}
ACTIONS: dict[Action, ActionHandler] = {
    Action.RESTART: _on_restart,
    Action.LANG: _on_lang,
    Action.SET_DEVICE: _on_set_device,
    Action.FORGET: _on_forget,
    Action.KEEP: _on_keep,
    Action.CHANGE_DEVICE: _on_change_device,
}
