"""The live Apple status step: whether to fetch it, what matters, Notify me, "it's fixed"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.apple_status.report import STATUS_FIX, Relevant, StatusReport, Subscription, relevant
from bot.conversation.callbacks import Action, Callback, decode
from bot.conversation.events import Context, Event, Tap
from bot.conversation.replies import Button, Reply, Result, Subscribe
from bot.conversation.state import UserState

if TYPE_CHECKING:
    from bot.conversation.engine import ActionHandler, Engine

__all__ = ["ACTIONS", "Relevant", "fixed_reply", "live_status", "wants_status"]


def wants_status(eng: Engine, event: Event, result: Result) -> bool:
    """Return True if `result`, decided without `ctx.status`, would use the live status.

    Adapters call handle() without the status first, and only when this says so fetch the
    (cached) feed and call handle() again with it: most updates never wait on Apple.
    """
    walk = result.state.walk
    showing = any(reply.anchor for reply in result.replies)
    if showing and walk is not None and not walk.done and walk.fix == STATUS_FIX:
        return True
    if isinstance(event, Tap):
        cb = decode(event.data, eng.knowledge)
        return cb is not None and cb.action is Action.NOTIFY
    return False


def fixed_reply(eng: Engine, sub: Subscription) -> Reply:
    """Return the message that tells a subscriber Apple reports their services fixed."""
    lang = sub.lang
    text = eng.t(lang, "status.fixed", services=", ".join(sub.services))
    rows: list[tuple[Button, ...]] = []
    if sub.entry in eng.knowledge.entries:
        path = eng.knowledge.path_for(sub.entry, sub.device)
        if STATUS_FIX in path[:-1]:  # carry on from the status step
            data = Callback(Action.NEXT, sub.entry, sub.device, STATUS_FIX).encode()
            rows.append((Button(eng.t(lang, "buttons.next"), data),))
    rows.append((eng.restart_button(lang),))
    return Reply(text, tuple(rows))


def live_status(eng: Engine, entry_id: str, report: StatusReport | None) -> Relevant | None:
    """Return the part of the report that matters for this entry (None: show static text)."""
    if report is None:
        return None
    return relevant(report, eng.status_services.names_for(entry_id))


def _on_notify(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """The user asked to hear when Apple's outage is over: subscribe, if there still is one."""
    assert cb.entry is not None and cb.device is not None
    lang = eng.lang(state, ctx)
    if ctx.status is None:
        return Result(state, toast=eng.t(lang, "status.notify_unavailable"), alert=True)
    live = live_status(eng, cb.entry, ctx.status)
    services = live.problem_services if live is not None else ()
    if not services:
        return Result(state, toast=eng.t(lang, "status.notify_over"), alert=True)
    return Result(
        state,
        toast=eng.t(lang, "status.notify_ok"),
        effects=(Subscribe(cb.entry, cb.device, lang, services),),
    )


ACTIONS: dict[Action, ActionHandler] = {Action.NOTIFY: _on_notify}
