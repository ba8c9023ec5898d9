"""Questions that matched nothing: a short list to pick from, the common errors, and the record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.conversation.callbacks import Action, Callback
from bot.conversation.events import Context, Tap
from bot.conversation.render import quote
from bot.conversation.replies import Button, RecordUnmatched, Reply, Result
from bot.conversation.state import UserState
from bot.insights.unmatched import NONE_OF_THESE, UnmatchedKind, UnmatchedQuery, normalize_question

if TYPE_CHECKING:
    from bot.conversation.engine import ActionHandler, Engine

UNMATCHED = "unmatched"  # UserState.extra key: the last question that matched nothing
COMMON_ERRORS: tuple[str, ...] = (
    "apple_id_server_error",
    "cannot_connect_icloud",
    "verification_failed",
)


def did_you_mean(
    eng: Engine, state: UserState, text: str, entry_ids: Sequence[str], ctx: Context
) -> Result:
    """Offer the entries that came close, and "None of these"."""
    lang = eng.lang(state, ctx)
    rows = [
        (Button(eng.entry_label(lang, eid), Callback(Action.ENTRY, eid).encode()),)
        for eid in entry_ids
    ]
    rows.append((Button(eng.t(lang, "buttons.none_of_these"), Callback(Action.NONE).encode()),))
    text_html = eng.t(lang, "did_you_mean", query=quote(text))
    return Result(state.with_(pending_entry=None), (Reply(text_html, tuple(rows)),))


def no_match(
    eng: Engine, state: UserState, ctx: Context, *, query: str | None, edit: bool = False
) -> Result:
    """Explain how to paste an error, with the most common errors as buttons."""
    lang = eng.lang(state, ctx)
    rows = tuple(
        (Button(eng.entry_label(lang, eid), Callback(Action.ENTRY, eid).encode()),)
        for eid in COMMON_ERRORS
        if eid in eng.knowledge.entries
    )
    key = "no_match" if query is not None else "none_of_these"
    text = eng.t(lang, key, query=quote(query or ""))
    return Result(state.with_(pending_entry=None), (Reply(text, rows, edit=edit),))


def keep(eng: Engine, result: Result, text: str, kind: UnmatchedKind, ctx: Context) -> Result:
    """Remember a question that matched nothing, so that the choice after it joins it."""
    query = UnmatchedQuery(result.state.user_id, normalize_question(text), kind, None, ctx.now)
    pending = {"text": query.text, "kind": kind.value, "at": ctx.now}
    state = result.state.with_(extra={**result.state.extra, UNMATCHED: pending})
    return replace(result, state=state, effects=(*result.effects, RecordUnmatched(query)))


def chose(result: Result, choice: str) -> Result:
    """Record what the user picked after a question that matched nothing."""
    pending = result.state.extra.get(UNMATCHED)
    if not isinstance(pending, dict):
        return result
    try:
        query: UnmatchedQuery | None = UnmatchedQuery(
            result.state.user_id,
            str(pending["text"]),
            UnmatchedKind(pending["kind"]),
            choice,
            float(pending["at"]),
        )
    except (KeyError, TypeError, ValueError):
        query = None
    extra = dict(result.state.extra)
    if choice != NONE_OF_THESE or query is None:
        # After "None of these" come the common errors: a pick there is the final choice.
        del extra[UNMATCHED]
    effects = result.effects if query is None else (*result.effects, RecordUnmatched(query))
    return replace(result, state=result.state.with_(extra=extra), effects=effects)


def _on_none(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """None of the suggestions fit: show the common errors instead."""
    return chose(no_match(eng, state, ctx, query=None, edit=True), NONE_OF_THESE)


ACTIONS: dict[Action, ActionHandler] = {Action.NONE: _on_none}
