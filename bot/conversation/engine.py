"""The conversation: a user's state and one event in, a new state and replies out. No I/O.

See engine.mmd beside this file for the flow. Adapters (Telegram, the terminal chat) translate
their own updates into the events below and the replies into messages; they persist
`Result.state` and `Result.records` before they show the replies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.apple_status.report import (
    STATUS_FIX,
    Relevant,
    ServiceMap,
    StatusReport,
    Subscription,
    relevant,
    status_html,
)
from bot.content.knowledge import Device, Entry, EntryKind, Knowledge
from bot.content.locales import Html, Locales, escape, pick_lang
from bot.conversation.callbacks import Action, Callback, decode, parse
from bot.conversation.render import bullet_list, entry_header, faq_text, fix_text, quote, topic_text
from bot.conversation.state import Outcome, OutcomeRecord, UserState, Walk
from bot.insights.learning import LearnedOrder
from bot.insights.learning import path_for as learned_path_for
from bot.insights.stats import DEFAULT_WINDOWS
from bot.insights.unmatched import NONE_OF_THESE, UnmatchedKind, UnmatchedQuery, normalize_question
from bot.matching.matcher import Matcher

COMMANDS: tuple[str, ...] = ("start", "help", "reset", "lang", "device", "forget")
COMMON_ERRORS: tuple[str, ...] = (
    "apple_id_server_error",
    "cannot_connect_icloud",
    "verification_failed",
)
MAX_TEXT = 4000  # characters of a user's message we look at (Telegram allows 4096)
HANDOVER = "handover"  # UserState.extra key while a person in the support group answers the user
WORDS = "words"  # UserState.extra key: what the user last typed, for the handover summary
WORDS_LIMIT = 500  # characters of it kept
RELAY_LIMIT = 3500  # characters of one relayed message (the header must fit in Telegram's 4096)
REPORT_LIMIT = 3800  # UTF-16 units of one message listing reload problems (Telegram: 4096)
REPORT_MESSAGES = 5  # messages of reload problems at most; the rest is counted
WALK_ACTIONS = frozenset({Action.NEXT, Action.BACK, Action.SOLVED, Action.SHOW})


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Text:
    """The user typed or pasted text."""

    text: str


@dataclass(frozen=True, slots=True)
class Tap:
    """The user pressed an inline button on one of our messages."""

    data: str
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command, e.g. /start apple_id_server_error."""

    name: str
    arg: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """Something that is not text: a sticker, photo, voice message, file…"""

    kind: str


@dataclass(frozen=True, slots=True)
class Screenshot:
    """A picture the user sent, as read by OCR, with its caption (either may be empty)."""

    text: str
    caption: str = ""


class Unreadable(StrEnum):
    """Why a picture could not be read."""

    TOO_LARGE = "too_large"  # over the byte or pixel limits
    NOT_IMAGE = "not_image"  # not a picture we can decode
    NO_TEXT = "no_text"  # read, but no text in it
    UNAVAILABLE = "unavailable"  # OCR is not installed, busy, timed out or failed


@dataclass(frozen=True, slots=True)
class UnreadablePicture:
    """A picture the user sent that could not be read, and its caption."""

    reason: Unreadable
    caption: str = ""


Event = Text | Tap | Command | Attachment | Screenshot | UnreadablePicture


@dataclass(frozen=True, slots=True)
class Context:
    """Facts about the moment of the event that are not in the user's state."""

    now: float
    language_code: str | None = None
    is_admin: bool = False
    # Apple's System Status in the user's language, when the adapter fetched it (see
    # Engine.wants_status); None: unknown, the status step shows its static text.
    status: StatusReport | None = None
    support: bool = False  # a support group is configured: a person can take over
    user_name: str = ""  # the user's display name, for the support group
    user_handle: str = ""  # their @username without the @, if any


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: either callback data or a URL."""

    label: str
    data: str | None = None
    url: str | None = None


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to show: sent anew, or replacing the message whose button was tapped."""

    text: Html
    buttons: Keyboard = ()
    edit: bool = False
    anchor: bool = False  # this message carries the walk's buttons


class Effect:
    """Base of the side effects an adapter carries out after it has saved the state.

    Subclasses are frozen dataclasses (e.g. subscribe to a status feed, hand over to a person);
    each adapter registers what it does for each kind it supports and ignores the others.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Subscribe(Effect):
    """Message this user once Apple reports these services fixed (the user tapped Notify)."""

    entry: str
    device: Device
    lang: str  # the feed language the service names come from
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Result:
    """What the engine decided: the state to persist, the history lines, what to show."""

    state: UserState
    replies: tuple[Reply, ...] = ()
    records: tuple[OutcomeRecord, ...] = ()
    toast: str | None = None  # the short notice that answers a button press
    alert: bool = False
    effects: tuple[Effect, ...] = ()


# ---------------------------------------------------------------- effects of operator features


@dataclass(frozen=True, slots=True)
class Reload(Effect):
    """An admin asked to reload knowledge/ and locales/; report the outcome in `lang`."""

    lang: str


@dataclass(frozen=True, slots=True)
class ToSupport(Effect):
    """Post `text` to the support group, linked to this user so operators' replies reach them.

    copy_incoming: also copy the message being handled there (a user's photo, file…);
    reply_to_incoming: post as a reply to it (an answer to an operator's command);
    from_user: the user waits on it, so if the group cannot be reached the handover ends and
    the user is told (Engine.support_unreachable).
    """

    text: Html
    copy_incoming: bool = False
    reply_to_incoming: bool = False
    from_user: bool = True


@dataclass(frozen=True, slots=True)
class CopyToUser(Effect):
    """Copy the operator's message being handled (a photo, a file…) to the user."""


@dataclass(frozen=True, slots=True)
class Forget(Effect):
    """Delete everything stored about the user, then show `notice` in place of the question."""

    notice: Html


# ------------------------------------------------- effects of outcomes and unmatched questions

UNMATCHED = "unmatched"  # UserState.extra key: the last question that matched nothing
MAX_STATS_DAYS = 3650


@dataclass(frozen=True, slots=True)
class ShowStats(Effect):
    """An admin asked for /stats: send the outcome report for these periods (days) and a chart."""

    lang: str
    windows: tuple[int, ...] = DEFAULT_WINDOWS


@dataclass(frozen=True, slots=True)
class RecordUnmatched(Effect):
    """Keep a question that matched nothing, or the choice made after it."""

    query: UnmatchedQuery


# --------------------------------------------------------------------------- the engine


@dataclass(slots=True)
class Engine:
    """The whole conversation logic, shared by every channel."""

    knowledge: Knowledge
    matcher: Matcher
    locales: Locales
    detect_device: Callable[[str], Device | None] = field(default=lambda _text: None)
    status_services: ServiceMap = field(default_factory=ServiceMap)
    # Fix order learned from outcomes (bot/learning.py), refreshed by the adapter; a walk in
    # progress keeps the path it started with.
    learned: LearnedOrder = field(default_factory=dict)

    # ----------------------------------------------------------------- entry point

    def handle(self, state: UserState, event: Event, ctx: Context) -> Result:
        """Apply one event to one user's state."""
        if self._handed_over(state):
            if not ctx.support:  # the support group was unset since: back to the bot
                state = _without_handover(state)
            elif isinstance(event, Text | Attachment):
                return self._relay_to_support(state, event, ctx)
            elif isinstance(event, Screenshot | UnreadablePicture):
                return self._relay_to_support(state, Attachment("photo"), ctx)
        if isinstance(event, Text):
            return self._on_text(state, event.text, ctx)
        if isinstance(event, Tap):
            return self._on_tap(state, event, ctx)
        if isinstance(event, Command):
            return self._on_command(state, event, ctx)
        if isinstance(event, Screenshot):
            return self._on_screenshot(state, event, ctx)
        if isinstance(event, UnreadablePicture):
            if event.caption.strip():  # the caption may name the error all the same
                return self._on_text(state, event.caption, ctx)
            return self._say(state, ctx, f"picture.{event.reason.value}")
        return self._say(state, ctx, "attachment")

    def lang(self, state: UserState, ctx: Context) -> str:
        """Return the language to answer this user in."""
        return pick_lang(state.lang, ctx.language_code)

    def command_descriptions(self, lang: str) -> list[tuple[str, str]]:
        """Return (command, description) pairs for the bot's menu in one language."""
        return [(name, self.locales.t(lang, f"commands.{name}")) for name in COMMANDS]

    # ----------------------------------------------------------------- text

    def _on_text(self, state: UserState, text: str, ctx: Context) -> Result:
        lang = self.lang(state, ctx)
        text = text.strip()[:MAX_TEXT]
        if not text:
            return self._say(state, ctx, "attachment")
        state = state.with_(extra={**state.extra, WORDS: text[:WORDS_LIMIT]})
        result = self.matcher.match(text)
        if result.entry is not None:
            device = self.detect_device(text) or state.device
            if device is not None and device is not state.device:
                state = state.with_(device=device)
            return self._open_entry(state, result.entry, ctx, edit=False, query=text)
        alternatives = [a for a in result.alternatives if a.entry in self.knowledge.entries][:3]
        if alternatives:
            rows = [
                (
                    Button(
                        self._entry_label(lang, a.entry), Callback(Action.ENTRY, a.entry).encode()
                    ),
                )
                for a in alternatives
            ]
            rows.append(
                (
                    Button(
                        self.locales.t(lang, "buttons.none_of_these"),
                        Callback(Action.NONE).encode(),
                    ),
                )
            )
            text_html = self.locales.t(lang, "did_you_mean", query=quote(text))
            asked = Result(state.with_(pending_entry=None), (Reply(text_html, tuple(rows)),))
            return self._keep_unmatched(asked, text, UnmatchedKind.DID_YOU_MEAN, ctx)
        return self._keep_unmatched(
            self._no_match(state, ctx, query=text), text, UnmatchedKind.NO_MATCH, ctx
        )

    def _on_screenshot(self, state: UserState, shot: Screenshot, ctx: Context) -> Result:
        """Carry on as if the user had pasted what the picture (or its caption) says."""
        read = " ".join(shot.text.split())
        caption = shot.caption.strip()
        if not read and not caption:
            return self._say(state, ctx, "picture.no_text")
        # The caption wins only when it is recognised and the picture's text is not.
        chosen = read or caption
        if (
            read
            and caption
            and self.matcher.match(read).entry is None
            and self.matcher.match(caption).entry is not None
        ):
            chosen = caption
        result = self._on_text(state, chosen, ctx)
        if not read or not result.replies:
            return result
        lang = self.lang(state, ctx)
        first, *rest = result.replies
        heard = self.locales.t(lang, "picture.read", text=quote(read))
        first = replace(first, text=Html(heard + "\n\n" + first.text))
        return replace(result, replies=(first, *rest))

    def _no_match(
        self, state: UserState, ctx: Context, *, query: str | None, edit: bool = False
    ) -> Result:
        lang = self.lang(state, ctx)
        rows = tuple(
            (Button(self._entry_label(lang, eid), Callback(Action.ENTRY, eid).encode()),)
            for eid in COMMON_ERRORS
            if eid in self.knowledge.entries
        )
        key = "no_match" if query is not None else "none_of_these"
        text = self.locales.t(lang, key, query=quote(query or ""))
        return Result(state.with_(pending_entry=None), (Reply(text, rows, edit=edit),))

    # ----------------------------------------------------------------- entries and walks

    def _open_entry(
        self, state: UserState, entry_id: str, ctx: Context, *, edit: bool, query: str | None = None
    ) -> Result:
        """Show a recognised entry: a FAQ answer, the device question, or the first fix."""
        lang = self.lang(state, ctx)
        entry = self.knowledge.entries[entry_id]
        if entry.kind is EntryKind.FAQ:
            rows: list[tuple[Button, ...]] = [
                (
                    Button(
                        self.locales.t(lang, "buttons.walk_related"),
                        Callback(Action.WALK, entry_id).encode(),
                    ),
                ),
                (self._restart_button(lang),),
            ]
            return Result(
                state.with_(pending_entry=None),
                (Reply(faq_text(self.locales, lang, entry), tuple(rows), edit=edit),),
            )
        return self._start_or_ask(state, entry, ctx, edit=edit)

    def _start_or_ask(self, state: UserState, entry: Entry, ctx: Context, *, edit: bool) -> Result:
        lang = self.lang(state, ctx)
        if state.device is None:
            rows = self._device_buttons(lang, lambda d: Callback(Action.DEVICE, entry.id, d))
            text = Html(
                entry_header(self.locales, lang, entry)
                + "\n\n"
                + self.locales.t(lang, "ask_device")
            )
            return Result(state.with_(pending_entry=entry.id), (Reply(text, rows, edit=edit),))
        return self._start_walk(state, entry, state.device, ctx, edit=edit)

    def _start_walk(
        self,
        state: UserState,
        entry: Entry,
        device: Device,
        ctx: Context,
        *,
        edit: bool,
        message_id: int | None = None,
    ) -> Result:
        lang = self.lang(state, ctx)
        path = self.path_for(entry.id, device)
        records = list(self._abandon(state, ctx))
        if not path:  # a knowledge base that validates always has a path, but never crash
            return Result(
                state.with_(walk=None, pending_entry=None),
                (Reply(self.locales.t(lang, "walk.empty"), edit=edit),),
            )
        walk = Walk(entry.id, device, path, 0, message_id if edit else None, ctx.now)
        records.append(
            OutcomeRecord(state.user_id, entry.id, device, path[0], Outcome.STARTED, ctx.now)
        )
        new_state = state.with_(walk=walk, pending_entry=None)
        header = entry_header(self.locales, lang, entry)
        return Result(
            new_state,
            (self._fix_reply(new_state, walk, lang, edit=edit, header=header, status=ctx.status),),
            tuple(records),
        )

    def _fix_reply(
        self,
        state: UserState,
        walk: Walk,
        lang: str,
        *,
        edit: bool,
        header: Html | None = None,
        status: StatusReport | None = None,
    ) -> Reply:
        fix_id = walk.path[walk.position]
        fix = self.knowledge.fixes[fix_id]  # callers settle the walk on a fix that exists
        # A reload may have removed fixes of a walk in progress: count only those that exist.
        position = sum(1 for f in walk.path[: walk.position] if f in self.knowledge.fixes)
        total = sum(1 for f in walk.path if f in self.knowledge.fixes)
        live = self._live_status(walk.entry, status) if fix_id == STATUS_FIX else None
        text = fix_text(
            self.knowledge,
            self.locales,
            lang,
            fix,
            walk.device,
            position,
            total,
            header,
            status_html(self.locales, lang, live) if live is not None else None,
        )

        def data(action: Action) -> str:
            return Callback(action, walk.entry, walk.device, fix_id).encode()

        rows: list[tuple[Button, ...]] = [
            (
                Button(self.locales.t(lang, "buttons.solved"), data(Action.SOLVED)),
                Button(self.locales.t(lang, "buttons.next"), data(Action.NEXT)),
            ),
        ]
        if live is not None and live.problems:
            notify = Callback(Action.NOTIFY, walk.entry, walk.device).encode()
            rows.append((Button(self.locales.t(lang, "status.notify_button"), notify),))
        if fix.link is not None:
            rows.append((Button(fix.link.label[lang], url=fix.link.url[lang]),))
        nav = [self._restart_button(lang)]
        if position > 0:
            nav.insert(0, Button(self.locales.t(lang, "buttons.back"), data(Action.BACK)))
        rows.append(tuple(nav))
        return Reply(text, tuple(rows), edit=edit, anchor=True)

    def _abandon(self, state: UserState, ctx: Context) -> tuple[OutcomeRecord, ...]:
        walk = state.walk
        if walk is None or walk.done:
            return ()
        return (
            OutcomeRecord(
                state.user_id, walk.entry, walk.device, walk.fix, Outcome.ABANDONED, ctx.now
            ),
        )

    # ----------------------------------------------------------------- taps

    def _on_tap(self, state: UserState, tap: Tap, ctx: Context) -> Result:
        lang = self.lang(state, ctx)
        cb = decode(tap.data, self.knowledge)
        if cb is None:
            return self._on_changed_tap(state, tap, ctx)
        if cb.action in (Action.NEXT, Action.BACK, Action.SOLVED, Action.SHOW):
            return self._on_walk_tap(state, cb, tap.message_id, ctx)
        if cb.action in (Action.HANDOVER, Action.FORGET, Action.KEEP):
            return self._on_operator_tap(state, cb, ctx)
        if cb.action is Action.DEVICE and cb.entry and cb.device:
            state = state.with_(device=cb.device)
            entry = self.knowledge.entries[cb.entry]
            return self._start_walk(
                state, entry, cb.device, ctx, edit=True, message_id=tap.message_id
            )
        if cb.action is Action.ENTRY and cb.entry:
            return self._chose(self._open_entry(state, cb.entry, ctx, edit=True), cb.entry)
        if cb.action is Action.WALK and cb.entry:
            return self._start_or_ask(state, self.knowledge.entries[cb.entry], ctx, edit=False)
        if cb.action is Action.NONE:
            return self._chose(self._no_match(state, ctx, query=None, edit=True), NONE_OF_THESE)
        if cb.action is Action.RESTART:
            return self._restart(state, ctx, edit=False)
        if cb.action is Action.LANG and cb.lang:
            state = state.with_(lang=cb.lang)
            return Result(state, (Reply(self.locales.t(cb.lang, "lang.set"), edit=True),))
        if cb.action is Action.NOTIFY and cb.entry and cb.device:
            return self._on_notify(state, cb.entry, cb.device, ctx)
        if cb.action is Action.SET_DEVICE and cb.device:
            state = state.with_(device=cb.device)
            label = self.locales.t(lang, f"device.{cb.device.value}")
            return Result(
                state, (Reply(self.locales.t(lang, "device.set", device=label), edit=True),)
            )
        return Result(state, toast=self.locales.t(lang, "stale_button"), alert=True)

    def _on_walk_tap(
        self, state: UserState, cb: Callback, message_id: int | None, ctx: Context
    ) -> Result:
        """Next, Back or Solved on a fix message, current or old."""
        assert cb.entry is not None and cb.device is not None and cb.fix is not None
        lang = self.lang(state, ctx)
        walk = state.walk
        records: list[OutcomeRecord] = []
        same_walk = walk is not None and walk.entry == cb.entry and walk.device == cb.device
        if same_walk and walk is not None and cb.fix in walk.path:
            moved_on = walk.fix != cb.fix and cb.action is not Action.SHOW
            if moved_on and message_id is not None and message_id == walk.message_id:
                # A second tap on a message we already moved on (double tap, or a retry after a
                # crash): show where the walk is now instead of stepping twice.
                return self._show_position(
                    state, walk, lang, toast=None, status=ctx.status, support=ctx.support
                )
            walk = replace(
                walk, position=walk.path.index(cb.fix), message_id=message_id or walk.message_id
            )
        else:
            # A button on an older message: resume that walk from the fix it shows.
            records += self._abandon(state, ctx)
            path = self.path_for(cb.entry, cb.device)
            walk = Walk(cb.entry, cb.device, path, path.index(cb.fix), message_id, ctx.now)
        fix = cb.fix
        if cb.action is Action.SOLVED:
            records.append(
                OutcomeRecord(state.user_id, cb.entry, cb.device, fix, Outcome.SOLVED, ctx.now)
            )
            new_state = state.with_(walk=None, pending_entry=None)
            title = self._fix_title(fix, lang)
            text = Html(
                self.locales.t(lang, "solved", fix=title)
                + "\n\n"
                + topic_text(self.knowledge, lang, "prevention")
            )
            rows = ((self._restart_button(lang),),)
            return Result(
                new_state,
                (Reply(text, rows, edit=True),),
                tuple(records),
                toast=self.locales.t(lang, "toast.solved"),
            )
        if cb.action is Action.SHOW:
            walk, skipped = self._settle(walk, -1)
            # A walk left done here had every fix removed by a reload.
            return self._walk_step(state.with_(walk=walk), lang, ctx, records, skipped)
        if cb.action is Action.BACK:
            earlier = [i for i in range(walk.position) if walk.path[i] in self.knowledge.fixes]
            if not earlier:
                return Result(state.with_(walk=walk), toast=self.locales.t(lang, "toast.first"))
            records.append(
                OutcomeRecord(state.user_id, cb.entry, cb.device, fix, Outcome.BACK, ctx.now)
            )
            walk = replace(walk, position=earlier[-1])  # removed fixes are passed over
            return self._walk_step(state.with_(walk=walk), lang, ctx, records, skipped=False)
        records.append(
            OutcomeRecord(state.user_id, cb.entry, cb.device, fix, Outcome.NEXT, ctx.now)
        )
        walk, skipped = self._settle(replace(walk, position=walk.position + 1), 1)
        if walk.done:
            records.append(
                OutcomeRecord(state.user_id, cb.entry, cb.device, None, Outcome.EXHAUSTED, ctx.now)
            )
        return self._walk_step(state.with_(walk=walk), lang, ctx, records, skipped)

    def _walk_step(
        self,
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
            reply = self._exhausted_reply(walk, lang, support=ctx.support)
        else:
            header = self._skipped_note(lang, skipped)
            reply = self._fix_reply(state, walk, lang, edit=True, status=ctx.status, header=header)
        return Result(state, (reply,), tuple(records))

    def _show_position(
        self,
        state: UserState,
        walk: Walk,
        lang: str,
        toast: str | None,
        status: StatusReport | None = None,
        support: bool = False,
    ) -> Result:
        walk, skipped = self._settle(walk, 1)
        if walk != state.walk:
            state = state.with_(walk=walk)
        reply = (
            self._exhausted_reply(walk, lang, support=support)
            if walk.done
            else self._fix_reply(
                state,
                walk,
                lang,
                edit=True,
                status=status,
                header=self._skipped_note(lang, skipped),
            )
        )
        return Result(state, (reply,), toast=toast)

    def _exhausted_reply(self, walk: Walk, lang: str, *, support: bool = False) -> Reply:
        url = self.knowledge.links["contact_support"][lang]
        rows: list[tuple[Button, ...]] = [
            (Button(self.locales.t(lang, "buttons.contact"), url=url),)
        ]
        if support:  # a person in the support group can take over
            talk = Callback(Action.HANDOVER, walk.entry, walk.device).encode()
            rows.append((Button(self.locales.t(lang, "buttons.talk_to_person"), talk),))
        if walk.path:
            last = Callback(Action.SHOW, walk.entry, walk.device, walk.path[-1]).encode()
            rows.append(
                (Button(self.locales.t(lang, "buttons.back"), last), self._restart_button(lang))
            )
        text = Html(
            self.locales.t(lang, "walk.exhausted")
            + "\n\n"
            + topic_text(self.knowledge, lang, "prevention")
        )
        return Reply(text, tuple(rows), edit=True, anchor=True)

    # ----------------------------------------------------------------- live edits (reload)

    def _on_changed_tap(self, state: UserState, tap: Tap, ctx: Context) -> Result:
        """A button that no longer validates: if it belongs to the walk in progress, go on.

        A reload may remove the fix a walk is at, or its whole entry, while the user reads it.
        The walk's own path (kept in its state) lets it carry on past removed fixes; a removed
        entry ends the walk politely. Any other such button gets the stale-button answer.
        """
        lang = self.lang(state, ctx)
        cb = parse(tap.data)
        walk = state.walk
        if (
            cb is None
            or cb.action not in WALK_ACTIONS
            or walk is None
            or (cb.entry, cb.device) != (walk.entry, walk.device)
            or cb.fix not in walk.path
        ):
            return Result(state, toast=self.locales.t(lang, "stale_button"), alert=True)
        if walk.entry not in self.knowledge.entries:
            records = self._abandon(state, ctx)
            rows = ((self._restart_button(lang),),)
            text = self.locales.t(lang, "walk.entry_removed")
            return Result(
                state.with_(walk=None, pending_entry=None),
                (Reply(text, rows, edit=True),),
                records,
            )
        return self._on_walk_tap(state, cb, tap.message_id, ctx)

    def _settle(self, walk: Walk, step: int) -> tuple[Walk, bool]:
        """Move the walk off fixes a reload removed, towards `step` (1 or -1).

        Return the walk and whether a removed fix was passed over. Going back past the first
        fix turns forward again; going forward past the last one leaves the walk done.
        """
        fixes = self.knowledge.fixes
        position = walk.position
        while 0 <= position < len(walk.path) and walk.path[position] not in fixes:
            position += step
        if position < 0:
            position = walk.position
            while position < len(walk.path) and walk.path[position] not in fixes:
                position += 1
        return replace(walk, position=position), position != walk.position

    def _skipped_note(self, lang: str, skipped: bool) -> Html | None:
        return self.locales.t(lang, "walk.skipped") if skipped else None

    def _fix_title(self, fix_id: str, lang: str) -> str:
        fix = self.knowledge.fixes.get(fix_id)
        return fix.title[lang] if fix is not None else self.locales.t(lang, "walk.removed_fix")

    def _cmd_reload(self, state: UserState, arg: str, ctx: Context) -> Result:
        if not ctx.is_admin:
            return self._say(state, ctx, "unknown_command", command="reload")
        return Result(state, effects=(Reload(self.lang(state, ctx)),))

    def reloaded(self, lang: str) -> Reply:
        """Report a successful reload (called on the new engine)."""
        return Reply(
            self.locales.t(
                lang,
                "reload.done",
                entries=len(self.knowledge.entries),
                fixes=len(self.knowledge.fixes),
            )
        )

    def reload_refused(self, lang: str, problems: Sequence[str]) -> tuple[Reply, ...]:
        """Report a refused reload: every problem, escaped, in messages Telegram accepts."""
        head = self.locales.t(lang, "reload.refused", count=len(problems))
        lines = [escape("• " + p[:500]) for p in problems]
        messages: list[list[str]] = [[head]]
        size = _utf16(head)
        shown = 0
        for line in lines:
            if size + 1 + _utf16(line) > REPORT_LIMIT:
                if len(messages) == REPORT_MESSAGES:
                    break
                messages.append([])
                size = 0
            messages[-1].append(line)
            size += 1 + _utf16(line)
            shown += 1
        if shown < len(lines):
            more = self.locales.t(lang, "reload.more", count=len(lines) - shown)
            if size + 1 + _utf16(more) > REPORT_LIMIT:
                messages[-1].pop()
                more = self.locales.t(lang, "reload.more", count=len(lines) - shown + 1)
            messages[-1].append(more)
        return tuple(Reply(Html("\n".join(m))) for m in messages if m)

    # ----------------------------------------------------------------- a person takes over

    def _handed_over(self, state: UserState) -> bool:
        return isinstance(state.extra.get(HANDOVER), dict)

    def _handover_info(self, state: UserState, ctx: Context) -> tuple[str, str]:
        """Return the language and name the handover was opened with (for group messages)."""
        info: dict[str, Any] = state.extra.get(HANDOVER) or {}
        lang = info.get("lang")
        name = info.get("name")
        return (
            lang if lang in ("ja", "en") else self.lang(state, ctx),
            name if isinstance(name, str) and name else _display_name(state, ctx),
        )

    def _on_operator_tap(self, state: UserState, cb: Callback, ctx: Context) -> Result:
        lang = self.lang(state, ctx)
        if cb.action is Action.FORGET:
            effects: list[Effect] = []
            if self._handed_over(state):
                group_lang, name = self._handover_info(state, ctx)
                text = self.locales.t(
                    group_lang, "handover.group_ended_by_user", name=name, user_id=state.user_id
                )
                effects.append(ToSupport(text, from_user=False))
            effects.append(Forget(self.locales.t(lang, "forget.done")))
            return Result(UserState(state.user_id), effects=tuple(effects))
        if cb.action is Action.KEEP:
            return Result(state, (Reply(self.locales.t(lang, "forget.kept"), edit=True),))
        assert cb.entry is not None and cb.device is not None
        if not ctx.support:
            return Result(state, toast=self.locales.t(lang, "handover.unavailable"), alert=True)
        if self._handed_over(state):
            return Result(state, toast=self.locales.t(lang, "handover.already"), alert=True)
        name = _display_name(state, ctx)
        info = {"since": ctx.now, "lang": lang, "name": name}
        new_state = state.with_(extra={**state.extra, HANDOVER: info})
        summary = self._handover_summary(state, cb.entry, cb.device, ctx, lang, name)
        return Result(
            new_state,
            (Reply(self.locales.t(lang, "handover.started")),),
            toast=self.locales.t(lang, "toast.handover"),
            effects=(ToSupport(summary),),
        )

    def _handover_summary(
        self, state: UserState, entry_id: str, device: Device, ctx: Context, lang: str, name: str
    ) -> Html:
        walk = state.walk
        if walk is not None and (walk.entry, walk.device) == (entry_id, device):
            tried: tuple[str, ...] = walk.path[: walk.position]
        else:  # the button of an earlier exhausted walk: all of its fixes were tried
            tried = self.knowledge.path_for(entry_id, device)
        titles = tuple(
            self.knowledge.fixes[f].title[lang] for f in tried if f in self.knowledge.fixes
        )
        entry = self.knowledge.entries.get(entry_id)
        none = self.locales.t(lang, "handover.nothing")
        words = state.extra.get(WORDS)
        return self.locales.t(
            lang,
            "handover.summary",
            name=name,
            username=f"@{ctx.user_handle}" if ctx.user_handle else none,
            user_id=state.user_id,
            language=lang,
            entry=entry.title[lang] if entry is not None else entry_id,
            device=self.locales.t(lang, f"device.{device.value}"),
            fixes=bullet_list(titles) if titles else none,
            words=quote(words, WORDS_LIMIT) if isinstance(words, str) and words else none,
        )

    def _relay_to_support(self, state: UserState, event: Text | Attachment, ctx: Context) -> Result:
        """While handed over, what the user sends goes to the support group."""
        lang, name = self._handover_info(state, ctx)
        if isinstance(event, Text):
            text = event.text.strip()[:RELAY_LIMIT]
            if not text:
                return Result(state)
            post = self.locales.t(
                lang, "handover.from_user", name=name, user_id=state.user_id, text=text
            )
            return Result(state, effects=(ToSupport(post),))
        post = self.locales.t(
            lang, "handover.from_user_attachment", name=name, user_id=state.user_id
        )
        return Result(state, effects=(ToSupport(post, copy_incoming=True),))

    def _cmd_done(self, state: UserState, arg: str, ctx: Context) -> Result:
        if not self._handed_over(state):
            return self._say(state, ctx, "handover.not_active")
        group_lang, name = self._handover_info(state, ctx)
        post = self.locales.t(
            group_lang, "handover.group_ended_by_user", name=name, user_id=state.user_id
        )
        return Result(
            _without_handover(state),
            (Reply(self.locales.t(self.lang(state, ctx), "handover.ended_by_user")),),
            effects=(ToSupport(post, from_user=False),),
        )

    def from_support(self, state: UserState, text: str | None, ctx: Context) -> Result:
        """An operator replied in the support group: text, or None for a photo, a file…"""
        lang, name = self._handover_info(state, ctx)
        if not self._handed_over(state):
            return self._support_closed(state, lang, name)
        if text is None:
            return Result(state, effects=(CopyToUser(),))
        text = text.strip()[:RELAY_LIMIT]
        if not text:
            return Result(state)
        return Result(state, (Reply(self.locales.t(lang, "handover.from_support", text=text)),))

    def support_done(self, state: UserState, ctx: Context) -> Result:
        """An operator ended the handover with /done."""
        lang, name = self._handover_info(state, ctx)
        if not self._handed_over(state):
            return self._support_closed(state, lang, name)
        post = self.locales.t(
            lang, "handover.group_ended_by_support", name=name, user_id=state.user_id
        )
        return Result(
            _without_handover(state),
            (Reply(self.locales.t(lang, "handover.ended_by_support")),),
            effects=(ToSupport(post, reply_to_incoming=True, from_user=False),),
        )

    def support_unreachable(self, state: UserState, ctx: Context) -> Result:
        """The support group could not be reached: end the handover, point to Apple."""
        lang, _ = self._handover_info(state, ctx)
        url = self.knowledge.links["contact_support"][lang]
        rows = ((Button(self.locales.t(lang, "buttons.contact"), url=url),),)
        text = self.locales.t(lang, "handover.unreachable")
        return Result(_without_handover(state), (Reply(text, rows),))

    def support_undelivered(self, state: UserState, ctx: Context) -> Html:
        """Return the group notice that an operator's answer could not reach the user."""
        lang, name = self._handover_info(state, ctx)
        return self.locales.t(lang, "handover.undelivered", name=name, user_id=state.user_id)

    def _support_closed(self, state: UserState, lang: str, name: str) -> Result:
        post = self.locales.t(lang, "handover.group_closed", name=name, user_id=state.user_id)
        return Result(state, effects=(ToSupport(post, reply_to_incoming=True, from_user=False),))

    # ----------------------------------------------------------------- privacy

    def _cmd_forget(self, state: UserState, arg: str, ctx: Context) -> Result:
        lang = self.lang(state, ctx)
        rows: Keyboard = (
            (
                Button(self.locales.t(lang, "buttons.forget"), Callback(Action.FORGET).encode()),
                Button(self.locales.t(lang, "buttons.keep"), Callback(Action.KEEP).encode()),
            ),
        )
        return Result(state, (Reply(self.locales.t(lang, "forget.ask"), rows),))

    # ----------------------------------------------------------------- commands

    def _on_command(self, state: UserState, cmd: Command, ctx: Context) -> Result:
        handler = _COMMAND_HANDLERS.get(cmd.name.lower())
        if handler is None:
            return self._say(state, ctx, "unknown_command", command=cmd.name[:32])
        return handler(self, state, cmd.arg.strip(), ctx)

    def _cmd_start(self, state: UserState, arg: str, ctx: Context) -> Result:
        if arg in self.knowledge.entries:  # deep link: t.me/<bot>?start=<entry_id>
            return self._open_entry(state, arg, ctx, edit=False)
        return self._say(state, ctx, "welcome")

    def _cmd_help(self, state: UserState, arg: str, ctx: Context) -> Result:
        return self._say(state, ctx, "help")

    def _cmd_reset(self, state: UserState, arg: str, ctx: Context) -> Result:
        return self._restart(state, ctx, edit=False)

    def _cmd_lang(self, state: UserState, arg: str, ctx: Context) -> Result:
        arg = arg.lower()
        if arg in ("ja", "en"):
            return Result(state.with_(lang=arg), (Reply(self.locales.t(arg, "lang.set")),))
        rows: Keyboard = (
            (
                Button("日本語", Callback(Action.LANG, lang="ja").encode()),
                Button("English", Callback(Action.LANG, lang="en").encode()),
            ),
        )
        return Result(state, (Reply(self.locales.t(self.lang(state, ctx), "lang.ask"), rows),))

    def _cmd_device(self, state: UserState, arg: str, ctx: Context) -> Result:
        lang = self.lang(state, ctx)
        current = self.locales.t(
            lang, f"device.{state.device.value}" if state.device else "device.unknown"
        )
        rows = self._device_buttons(lang, lambda d: Callback(Action.SET_DEVICE, device=d))
        return Result(state, (Reply(self.locales.t(lang, "device.ask", device=current), rows),))

    def _restart(self, state: UserState, ctx: Context, *, edit: bool) -> Result:
        lang = self.lang(state, ctx)
        records = self._abandon(state, ctx)
        new_state = state.with_(walk=None, pending_entry=None)
        reply = Reply(self.locales.t(lang, "restart"), edit=edit)
        if self._handed_over(state):  # starting over also ends a conversation with a person
            ended = self._cmd_done(new_state, "", ctx)
            return replace(ended, replies=(reply,), records=records)
        return Result(new_state, (reply,), records)

    # ----------------------------------------------------------------- live Apple status

    def wants_status(self, event: Event, result: Result) -> bool:
        """Return True if `result`, decided without `ctx.status`, would use the live status.

        Adapters call handle() without the status first, and only when this says so fetch the
        (cached) feed and call handle() again with it: most updates never wait on Apple.
        """
        walk = result.state.walk
        showing = any(reply.anchor for reply in result.replies)
        if showing and walk is not None and not walk.done and walk.fix == STATUS_FIX:
            return True
        if isinstance(event, Tap):
            cb = decode(event.data, self.knowledge)
            return cb is not None and cb.action is Action.NOTIFY
        return False

    def status_fixed_reply(self, sub: Subscription) -> Reply:
        """Return the message that tells a subscriber Apple reports their services fixed."""
        lang = sub.lang
        text = self.locales.t(lang, "status.fixed", services=", ".join(sub.services))
        rows: list[tuple[Button, ...]] = []
        if sub.entry in self.knowledge.entries:
            path = self.knowledge.path_for(sub.entry, sub.device)
            if STATUS_FIX in path[:-1]:  # carry on from the status step
                data = Callback(Action.NEXT, sub.entry, sub.device, STATUS_FIX).encode()
                rows.append((Button(self.locales.t(lang, "buttons.next"), data),))
        rows.append((self._restart_button(lang),))
        return Reply(text, tuple(rows))

    def _live_status(self, entry_id: str, status: StatusReport | None) -> Relevant | None:
        """Return the part of the report that matters for this entry (None: show static text)."""
        if status is None:
            return None
        return relevant(status, self.status_services.names_for(entry_id))

    def _on_notify(self, state: UserState, entry_id: str, device: Device, ctx: Context) -> Result:
        """The user asked to hear when Apple's outage is over: subscribe, if there still is one."""
        lang = self.lang(state, ctx)
        if ctx.status is None:
            toast = self.locales.t(lang, "status.notify_unavailable")
            return Result(state, toast=toast, alert=True)
        live = self._live_status(entry_id, ctx.status)
        services = live.problem_services if live is not None else ()
        if not services:
            return Result(state, toast=self.locales.t(lang, "status.notify_over"), alert=True)
        return Result(
            state,
            toast=self.locales.t(lang, "status.notify_ok"),
            effects=(Subscribe(entry_id, device, lang, services),),
        )

    # ----------------------------------------------------------------- helpers

    def _say(self, state: UserState, ctx: Context, key: str, **params: str) -> Result:
        return Result(state, (Reply(self.locales.t(self.lang(state, ctx), key, **params)),))

    def _entry_label(self, lang: str, entry_id: str) -> str:
        return self.knowledge.entries[entry_id].title[lang]

    def _device_buttons(self, lang: str, callback: Callable[[Device], Callback]) -> Keyboard:
        return tuple(
            (Button(self.locales.t(lang, f"device.{d.value}"), callback(d).encode()),)
            for d in Device
        )

    def _restart_button(self, lang: str) -> Button:
        return Button(self.locales.t(lang, "buttons.restart"), Callback(Action.RESTART).encode())

    # ----------------------------------------------------------------- outcomes, learning

    def path_for(self, entry_id: str, device: Device) -> tuple[str, ...]:
        """Return the fixes a new walk goes through: learned order within stages, or authored."""
        return learned_path_for(self.knowledge, self.learned, entry_id, device)

    def _cmd_stats(self, state: UserState, arg: str, ctx: Context) -> Result:
        if not ctx.is_admin:  # the command does not exist for anyone else
            return self._say(state, ctx, "unknown_command", command="stats")
        windows = DEFAULT_WINDOWS
        if arg.isdigit() and 1 <= int(arg) <= MAX_STATS_DAYS:
            windows = (int(arg),)
        return Result(state, effects=(ShowStats(self.lang(state, ctx), windows),))

    # ----------------------------------------------------------------- unmatched questions

    def _keep_unmatched(
        self, result: Result, text: str, kind: UnmatchedKind, ctx: Context
    ) -> Result:
        """Remember a question that matched nothing, so that the choice after it joins it."""
        query = UnmatchedQuery(result.state.user_id, normalize_question(text), kind, None, ctx.now)
        pending = {"text": query.text, "kind": kind.value, "at": ctx.now}
        state = result.state.with_(extra={**result.state.extra, UNMATCHED: pending})
        return replace(result, state=state, effects=(*result.effects, RecordUnmatched(query)))

    def _chose(self, result: Result, choice: str) -> Result:
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


CommandHandler = Callable[[Engine, UserState, str, Context], Result]

# Every command the engine understands; admin-only ones check ctx.is_admin themselves and
# answer like an unknown command otherwise.
_COMMAND_HANDLERS: dict[str, CommandHandler] = {
    "start": Engine._cmd_start,
    "help": Engine._cmd_help,
    "reset": Engine._cmd_reset,
    "lang": Engine._cmd_lang,
    "device": Engine._cmd_device,
    "reload": Engine._cmd_reload,  # admins only
    "done": Engine._cmd_done,
    "forget": Engine._cmd_forget,
    "stats": Engine._cmd_stats,
}


def _without_handover(state: UserState) -> UserState:
    return state.with_(extra={k: v for k, v in state.extra.items() if k != HANDOVER})


def _display_name(state: UserState, ctx: Context) -> str:
    return ctx.user_name.strip()[:64] or f"#{state.user_id}"


def _utf16(text: str) -> int:
    """Return the length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2
