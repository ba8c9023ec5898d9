"""The walk: text → entry, the device question, one fix after another, and how a walk ends."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bot.content.knowledge import Device, Entry, EntryKind
from bot.content.locales import Html, escape
from bot.conversation.callbacks import Action, Callback, parse
from bot.conversation.events import MAX_TEXT, Context, Screenshot, Tap
from bot.conversation.flows import topics, typed, unmatched
from bot.conversation.flows.handover import WORDS, WORDS_LIMIT
from bot.conversation.render import (
    entry_header,
    faq_text,
    quote,
    topic_text,
)
from bot.conversation.replies import Button, Keyboard, Reply, Result
from bot.conversation.state import WRITTEN, Outcome, OutcomeRecord, UserState, Walk
from bot.conversation.steps import exhausted_reply, fix_reply, is_final
from bot.insights.unmatched import UnmatchedKind

if TYPE_CHECKING:
    from bot.conversation.engine import ActionHandler, Engine


WALK_ACTIONS = frozenset({Action.NEXT, Action.BACK, Action.SOLVED, Action.SHOW})


# --------------------------------------------------------------------------- text → entry


def on_text(eng: Engine, state: UserState, text: str, ctx: Context) -> Result:
    """Recognise an error in what the user typed: its walk, a short list, or common errors."""
    text = text.strip()[:MAX_TEXT]
    if not text:
        return eng.say(state, ctx, "attachment")
    state = state.with_(extra={**state.extra, WORDS: text[:WORDS_LIMIT]})
    state = written_in(eng, state, text)
    result = eng.matcher.match(text)
    if result.entry is None:
        answered = typed.device_answer(eng, state, text, ctx)
        if answered is not None:
            return answered
    if result.entry is None and result.topic is not None:
        return topics.show(eng, state, result.topic, ctx, edit=False)
    if result.entry is None and typed.in_walk(state):
        answered = typed.answer(eng, state, text, ctx)
        if answered is not None:
            return answered
        if not result.alternatives:
            return typed.not_understood(eng, state, ctx)
    if result.entry is not None:
        device = eng.detect_device(text) or state.device
        if device is not None and device is not state.device:
            state = state.with_(device=device)
        return open_entry(eng, state, result.entry, ctx, edit=False)
    alternatives = [a.entry for a in result.alternatives if a.entry in eng.knowledge.entries]
    if alternatives:
        asked = unmatched.did_you_mean(eng, state, text, alternatives[:3], ctx)
        return unmatched.keep(eng, asked, text, UnmatchedKind.DID_YOU_MEAN, ctx)
    return unmatched.keep(
        eng, unmatched.no_match(eng, state, ctx, query=text), text, UnmatchedKind.NO_MATCH, ctx
    )


def written_in(eng: Engine, state: UserState, text: str) -> UserState:
    """Remember the language of the message: the bot answers in it unless /lang chose one."""
    code = eng.written_language(text)
    if code is None or state.extra.get(WRITTEN) == code:
        return state
    return state.with_(extra={**state.extra, WRITTEN: code})


def on_screenshot(eng: Engine, state: UserState, shot: Screenshot, ctx: Context) -> Result:
    """Carry on as if the user had pasted what the picture (or its caption) says."""
    read = " ".join(shot.text.split())
    caption = shot.caption.strip()
    if not read and not caption:
        return eng.say(state, ctx, "picture.no_text")
    # The caption wins only when it is recognised and the picture's text is not.
    chosen = read or caption
    if (
        read
        and caption
        and eng.matcher.match(read).entry is None
        and eng.matcher.match(caption).entry is not None
    ):
        chosen = caption
    result = on_text(eng, state, chosen, ctx)
    if not read or not result.replies:
        return result
    first, *rest = result.replies
    heard = eng.t(eng.lang(state, ctx), "picture.read", text=quote(read))
    first = replace(first, text=Html(heard + "\n\n" + first.text))
    return replace(result, replies=(first, *rest))


# --------------------------------------------------------------------------- starting a walk


def open_entry(eng: Engine, state: UserState, entry_id: str, ctx: Context, *, edit: bool) -> Result:
    """Show a recognised entry: a FAQ answer, the device question, or the first fix."""
    lang = eng.lang(state, ctx)
    entry = eng.knowledge.entries[entry_id]
    if entry.kind is EntryKind.FAQ:
        walk_button = Button(
            eng.t(lang, "buttons.walk_related"), Callback(Action.WALK, entry_id).encode()
        )
        rows = ((walk_button,), (eng.restart_button(lang),))
        return Result(
            state.with_(pending_entry=None),
            (Reply(faq_text(eng.locales, lang, entry), rows, edit=edit),),
        )
    return start_or_ask(eng, state, entry, ctx, edit=edit)


def start_or_ask(
    eng: Engine, state: UserState, entry: Entry, ctx: Context, *, edit: bool
) -> Result:
    """Start the entry's walk on the remembered device (confirming it), or ask for the device."""
    lang = eng.lang(state, ctx)
    if state.device is None:
        rows = eng.device_buttons(lang, lambda d: Callback(Action.DEVICE, entry.id, d))
        text = Html(entry_header(eng.locales, lang, entry) + "\n\n" + eng.t(lang, "ask_device"))
        return Result(state.with_(pending_entry=entry.id), (Reply(text, rows, edit=edit),))
    return begin(eng, state, entry, state.device, ctx, edit=edit, confirm=True)


def begin(
    eng: Engine,
    state: UserState,
    entry: Entry,
    device: Device,
    ctx: Context,
    *,
    edit: bool,
    message_id: int | None = None,
    confirm: bool = False,
) -> Result:
    """Start the entry's walk for the device, or say that the entry is not for that device.

    confirm: the device was remembered, not just chosen: say which device the walk is for,
    with a button to change it.
    """
    if not entry.applies_to(device):
        return not_for_device(eng, state, entry, ctx, edit=edit)
    return start_walk(
        eng, state, entry, device, ctx, edit=edit, message_id=message_id, confirm=confirm
    )


def not_for_device(
    eng: Engine, state: UserState, entry: Entry, ctx: Context, *, edit: bool
) -> Result:
    """Say why the entry does not happen on the user's device; offer the devices it is for.

    No walk starts, so no walk outcome is recorded (an earlier walk left is abandoned). The
    entry stays pending: choosing a device it is for, here or with /device, starts its walk.
    """
    lang = eng.lang(state, ctx)
    parts = [entry_header(eng.locales, lang, entry)]
    if entry.other_device is not None:
        parts.append(escape(entry.other_device[lang]))
    rows = eng.device_buttons(
        lang, lambda d: Callback(Action.DEVICE, entry.id, d), only=entry.devices
    )
    reply = Reply(Html("\n\n".join(parts)), (*rows, (eng.restart_button(lang),)), edit=edit)
    records = eng.abandon(state, ctx)
    return Result(state.with_(walk=None, pending_entry=entry.id), (reply,), records)


def start_walk(
    eng: Engine,
    state: UserState,
    entry: Entry,
    device: Device,
    ctx: Context,
    *,
    edit: bool,
    message_id: int | None = None,
    confirm: bool = False,
) -> Result:
    """Begin a new walk of the entry's fixes for the device, at its first fix."""
    lang = eng.lang(state, ctx)
    path = eng.path_for(entry.id, device)
    records = list(eng.abandon(state, ctx))
    if not path:  # a knowledge base that validates always has a path, but never crash
        return Result(
            state.with_(walk=None, pending_entry=None),
            (Reply(eng.t(lang, "walk.empty"), edit=edit),),
        )
    walk = Walk(entry.id, device, path, 0, message_id if edit else None, ctx.now)
    records.append(
        OutcomeRecord(state.user_id, entry.id, device, path[0], Outcome.STARTED, ctx.now)
    )
    new_state = state.with_(walk=walk, pending_entry=None)
    header = entry_header(eng.locales, lang, entry)
    extra: Keyboard = ()
    if confirm:
        label = eng.t(lang, f"device.{device.value}")
        header = Html(header + "\n" + eng.t(lang, "walk.for_device", device=label))
        change = Callback(Action.CHANGE_DEVICE).encode()
        extra = ((Button(eng.t(lang, "buttons.change_device"), change),),)
    if entry.order_note is not None:  # once, at the start: why this walk leaves the usual order
        header = Html(header + "\n\n" + eng.t(lang, "walk.order_note", note=entry.order_note[lang]))
    reply = fix_reply(eng, walk, lang, ctx, edit=edit, header=header, extra=extra)
    return Result(new_state, (reply,), tuple(records))


def redraw(eng: Engine, state: UserState, device: Device, ctx: Context) -> Result:
    """Show the walk in progress for another device: the same fix if it has one, else the start.

    The walk for the old device is abandoned and one for the new device starts (in a new
    message: the tap came from the device question).
    """
    walk = state.walk
    assert walk is not None
    lang = eng.lang(state, ctx)
    entry = eng.knowledge.entries[walk.entry]
    if not entry.applies_to(device):
        return not_for_device(eng, state, entry, ctx, edit=False)
    path = eng.path_for(entry.id, device)
    if not path:
        return start_walk(eng, state, entry, device, ctx, edit=False)
    # The final step hands over to someone else: a new device starts from its first fix.
    position = path.index(walk.fix) if walk.fix in path[:-1] else 0
    new = Walk(entry.id, device, path, position, None, ctx.now)
    records = (
        *eng.abandon(state, ctx),
        OutcomeRecord(state.user_id, entry.id, device, new.fix, Outcome.STARTED, ctx.now),
    )
    header = eng.t(lang, "walk.redrawn", device=eng.t(lang, f"device.{device.value}"))
    reply = fix_reply(eng, new, lang, ctx, edit=False, header=header)
    return Result(state.with_(walk=new, pending_entry=None), (reply,), records)


# --------------------------------------------------------------------------- taps on a walk


def on_walk_tap(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """Next, Back, Solved or Show on a fix message, current or old."""
    assert cb.entry is not None and cb.device is not None and cb.fix is not None
    lang = eng.lang(state, ctx)
    if not eng.knowledge.applies(cb.entry, cb.device):  # e.g. the entry's devices were edited
        return not_for_device(eng, state, eng.knowledge.entries[cb.entry], ctx, edit=True)
    walk = state.walk
    message_id = tap.message_id
    records: list[OutcomeRecord] = []
    if (
        walk is not None
        and (walk.entry, walk.device) == (cb.entry, cb.device)
        and cb.fix in walk.path
    ):
        moved_on = walk.fix != cb.fix and cb.action is not Action.SHOW
        if moved_on and message_id is not None and message_id == walk.message_id:
            # A second tap on a message we already moved on (double tap, or a retry after a
            # crash): show where the walk is now instead of stepping twice.
            return show_position(eng, state, walk, lang, ctx)
        walk = replace(
            walk, position=walk.path.index(cb.fix), message_id=message_id or walk.message_id
        )
    else:
        # A button on an older message: resume that walk from the fix it shows.
        records += eng.abandon(state, ctx)
        path = eng.path_for(cb.entry, cb.device)
        walk = Walk(cb.entry, cb.device, path, path.index(cb.fix), message_id, ctx.now)
    if is_final(walk) and cb.action in (Action.SOLVED, Action.NEXT):
        # Buttons of a message shown before the final step lost them: contacting someone
        # else is not a fix that solved it, nor one that failed; show the ending again.
        return _step(eng, state.with_(walk=walk), lang, ctx, records, skipped=False)
    if cb.action is Action.SOLVED:
        return _solved(eng, state, walk, lang, records, ctx)
    if cb.action is Action.SHOW:
        walk, skipped = settle(eng, walk, -1)
        # A walk left done here had every fix removed by a reload.
        return _step(eng, state.with_(walk=walk), lang, ctx, records, skipped)
    if cb.action is Action.BACK:
        earlier = [i for i in range(walk.position) if walk.path[i] in eng.knowledge.fixes]
        if not earlier:
            return Result(state.with_(walk=walk), toast=eng.t(lang, "toast.first"))
        records.append(_record(state, walk, Outcome.BACK, ctx))
        walk = replace(walk, position=earlier[-1])  # removed fixes are passed over
        return _step(eng, state.with_(walk=walk), lang, ctx, records, skipped=False)
    records.append(_record(state, walk, Outcome.NEXT, ctx))
    walk, skipped = settle(eng, replace(walk, position=walk.position + 1), 1)
    if walk.done or is_final(walk):  # every fix tried: what is left is to hand over
        records.append(
            OutcomeRecord(state.user_id, walk.entry, walk.device, None, Outcome.EXHAUSTED, ctx.now)
        )
    return _step(eng, state.with_(walk=walk), lang, ctx, records, skipped)


def _record(state: UserState, walk: Walk, outcome: Outcome, ctx: Context) -> OutcomeRecord:
    return OutcomeRecord(state.user_id, walk.entry, walk.device, walk.fix, outcome, ctx.now)


def _solved(
    eng: Engine,
    state: UserState,
    walk: Walk,
    lang: str,
    records: list[OutcomeRecord],
    ctx: Context,
) -> Result:
    records.append(_record(state, walk, Outcome.SOLVED, ctx))
    title = fix_title(eng, walk.fix or "", lang)
    text = Html(
        eng.t(lang, "solved", fix=title) + "\n\n" + topic_text(eng.knowledge, lang, "prevention")
    )
    return Result(
        state.with_(walk=None, pending_entry=None),
        (Reply(text, ((eng.restart_button(lang),),), edit=True),),
        tuple(records),
        toast=eng.t(lang, "toast.solved"),
    )


def _step(
    eng: Engine,
    state: UserState,
    lang: str,
    ctx: Context,
    records: list[OutcomeRecord],
    skipped: bool,
) -> Result:
    """Show where the walk now is, in place: its fix, or the end of the walk."""
    walk = state.walk
    assert walk is not None
    if walk.done:
        reply = exhausted_reply(eng, walk, lang, ctx)
    else:
        reply = fix_reply(eng, walk, lang, ctx, edit=True, header=_skipped_note(eng, lang, skipped))
    return Result(state, (reply,), tuple(records))


def show_position(eng: Engine, state: UserState, walk: Walk, lang: str, ctx: Context) -> Result:
    """Show the walk where it is now (after a double tap), in place."""
    walk, skipped = settle(eng, walk, 1)
    if walk != state.walk:
        state = state.with_(walk=walk)
    if walk.done:
        reply = exhausted_reply(eng, walk, lang, ctx)
    else:
        reply = fix_reply(eng, walk, lang, ctx, edit=True, header=_skipped_note(eng, lang, skipped))
    return Result(state, (reply,))


# --------------------------------------------------------------------------- live edits (reload)


def on_changed_tap(eng: Engine, state: UserState, tap: Tap, ctx: Context) -> Result:
    """A button that no longer validates: if it belongs to the walk in progress, go on.

    A reload may remove the fix a walk is at, or its whole entry, while the user reads it.
    The walk's own path (kept in its state) lets it carry on past removed fixes; a removed
    entry ends the walk politely. Any other such button gets the stale-button answer.
    """
    lang = eng.lang(state, ctx)
    cb = parse(tap.data)
    walk = state.walk
    if (
        cb is None
        or cb.action not in WALK_ACTIONS
        or walk is None
        or (cb.entry, cb.device) != (walk.entry, walk.device)
        or cb.fix not in walk.path
    ):
        return eng.stale(state, ctx)
    if walk.entry not in eng.knowledge.entries:
        records = eng.abandon(state, ctx)
        rows = ((eng.restart_button(lang),),)
        text = eng.t(lang, "walk.entry_removed")
        return Result(
            state.with_(walk=None, pending_entry=None), (Reply(text, rows, edit=True),), records
        )
    return on_walk_tap(eng, state, cb, tap, ctx)


def settle(eng: Engine, walk: Walk, step: int) -> tuple[Walk, bool]:
    """Move the walk off fixes a reload removed, towards `step` (1 or -1).

    Return the walk and whether a removed fix was passed over. Going back past the first
    fix turns forward again; going forward past the last one leaves the walk done.
    """
    fixes = eng.knowledge.fixes
    position = walk.position
    while 0 <= position < len(walk.path) and walk.path[position] not in fixes:
        position += step
    if position < 0:
        position = walk.position
        while position < len(walk.path) and walk.path[position] not in fixes:
            position += 1
    return replace(walk, position=position), position != walk.position


def _skipped_note(eng: Engine, lang: str, skipped: bool) -> Html | None:
    return eng.t(lang, "walk.skipped") if skipped else None


def fix_title(eng: Engine, fix_id: str, lang: str) -> str:
    """Return a fix's title, or a placeholder for a fix a reload removed."""
    fix = eng.knowledge.fixes.get(fix_id)
    return fix.title[lang] if fix is not None else eng.t(lang, "walk.removed_fix")


# --------------------------------------------------------------------------- other buttons


def on_device(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """The answer to the device question: remember it and start the walk."""
    assert cb.entry is not None and cb.device is not None
    state = state.with_(device=cb.device)
    entry = eng.knowledge.entries[cb.entry]
    return begin(eng, state, entry, cb.device, ctx, edit=True, message_id=tap.message_id)


def _on_entry(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """An entry picked from a short list (did you mean, common errors)."""
    assert cb.entry is not None
    return unmatched.chose(open_entry(eng, state, cb.entry, ctx, edit=True), cb.entry)


def _on_walk(eng: Engine, state: UserState, cb: Callback, tap: Tap, ctx: Context) -> Result:
    """Walk the fixes of an entry after its FAQ answer."""
    assert cb.entry is not None
    return start_or_ask(eng, state, eng.knowledge.entries[cb.entry], ctx, edit=False)


ACTIONS: dict[Action, ActionHandler] = {
    Action.NEXT: on_walk_tap,
    Action.BACK: on_walk_tap,
    Action.SOLVED: on_walk_tap,
    Action.SHOW: on_walk_tap,
    Action.DEVICE: on_device,
    Action.ENTRY: _on_entry,
    Action.WALK: _on_walk,
}
