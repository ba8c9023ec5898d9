"""The conversation: a user's state and one event in, a new state and replies out. No I/O.

See engine.mmd beside this file for the flow. Adapters (Telegram, the terminal chat) translate
their own updates into the events below and the replies into messages; they persist
`Result.state` and `Result.records` before they show the replies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.callbacks import Action, Callback, decode
from bot.i18n import Html, Locales, pick_lang
from bot.knowledge import Device, Entry, EntryKind, Knowledge
from bot.learning import LearnedOrder
from bot.learning import path_for as learned_path_for
from bot.matcher import Matcher
from bot.render import entry_header, faq_text, fix_text, quote, topic_text
from bot.state import Outcome, OutcomeRecord, UserState, Walk
from bot.stats import DEFAULT_WINDOWS
from bot.status import (
    STATUS_FIX,
    Relevant,
    ServiceMap,
    StatusReport,
    Subscription,
    relevant,
    status_html,
)
from bot.unmatched import NONE_OF_THESE, UnmatchedKind, UnmatchedQuery, normalize_question

COMMANDS: tuple[str, ...] = ("start", "help", "reset", "lang", "device")
COMMON_ERRORS: tuple[str, ...] = (
    "apple_id_server_error",
    "cannot_connect_icloud",
    "verification_failed",
)
MAX_TEXT = 4000  # characters of a user's message we look at (Telegram allows 4096)


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


Event = Text | Tap | Command | Attachment


@dataclass(frozen=True, slots=True)
class Context:
    """Facts about the moment of the event that are not in the user's state."""

    now: float
    language_code: str | None = None
    is_admin: bool = False
    # Apple's System Status in the user's language, when the adapter fetched it (see
    # Engine.wants_status); None: unknown, the status step shows its static text.
    status: StatusReport | None = None


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
        if isinstance(event, Text):
            return self._on_text(state, event.text, ctx)
        if isinstance(event, Tap):
            return self._on_tap(state, event, ctx)
        if isinstance(event, Command):
            return self._on_command(state, event, ctx)
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
        fix = self.knowledge.fixes[fix_id]
        live = self._live_status(walk.entry, status) if fix_id == STATUS_FIX else None
        text = fix_text(
            self.knowledge,
            self.locales,
            lang,
            fix,
            walk.device,
            walk.position,
            len(walk.path),
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
        if walk.position > 0:
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
            return Result(state, toast=self.locales.t(lang, "stale_button"), alert=True)
        if cb.action in (Action.NEXT, Action.BACK, Action.SOLVED, Action.SHOW):
            return self._on_walk_tap(state, cb, tap.message_id, ctx)
        assert cb.entry is not None or cb.action not in (Action.DEVICE, Action.ENTRY, Action.WALK)
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
                return self._show_position(state, walk, lang, toast=None, status=ctx.status)
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
            title = self.knowledge.fixes[fix].title[lang]
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
            new_state = state.with_(walk=walk)
            return Result(
                new_state,
                (self._fix_reply(new_state, walk, lang, edit=True, status=ctx.status),),
                tuple(records),
            )
        if cb.action is Action.BACK:
            if walk.position == 0:
                return Result(state.with_(walk=walk), toast=self.locales.t(lang, "toast.first"))
            records.append(
                OutcomeRecord(state.user_id, cb.entry, cb.device, fix, Outcome.BACK, ctx.now)
            )
            walk = replace(walk, position=walk.position - 1)
            new_state = state.with_(walk=walk)
            return Result(
                new_state,
                (self._fix_reply(new_state, walk, lang, edit=True, status=ctx.status),),
                tuple(records),
            )
        records.append(
            OutcomeRecord(state.user_id, cb.entry, cb.device, fix, Outcome.NEXT, ctx.now)
        )
        walk = replace(walk, position=walk.position + 1)
        if walk.done:
            records.append(
                OutcomeRecord(state.user_id, cb.entry, cb.device, None, Outcome.EXHAUSTED, ctx.now)
            )
            new_state = state.with_(walk=walk)
            return Result(new_state, (self._exhausted_reply(walk, lang),), tuple(records))
        new_state = state.with_(walk=walk)
        return Result(
            new_state,
            (self._fix_reply(new_state, walk, lang, edit=True, status=ctx.status),),
            tuple(records),
        )

    def _show_position(
        self,
        state: UserState,
        walk: Walk,
        lang: str,
        toast: str | None,
        status: StatusReport | None = None,
    ) -> Result:
        reply = (
            self._exhausted_reply(walk, lang)
            if walk.done
            else self._fix_reply(state, walk, lang, edit=True, status=status)
        )
        return Result(state, (reply,), toast=toast)

    def _exhausted_reply(self, walk: Walk, lang: str) -> Reply:
        url = self.knowledge.links["contact_support"][lang]
        rows: list[tuple[Button, ...]] = [
            (Button(self.locales.t(lang, "buttons.contact"), url=url),)
        ]
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
        return Result(new_state, (Reply(self.locales.t(lang, "restart"), edit=edit),), records)

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
    "stats": Engine._cmd_stats,
}
