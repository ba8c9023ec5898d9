"""The conversation's front door: a user's state and one event in, a new state and replies out.

No I/O, no channel. The engine routes each event to a flow in `flows/` (the walk, the handover
to a person, the account commands, the admin reports, the live Apple status, unmatched
questions): commands and button actions through the `COMMANDS` and `ACTIONS` tables the flows
export, so a new feature is a new table row, not a new branch here. It also holds the few
helpers every flow uses. See engine.mmd beside this file for the flow. Adapters (Telegram, the
terminal chat) translate their own updates into events (events.py) and the replies and effects
(replies.py) into messages; they persist `Result.state` and `Result.records` before they show
the replies.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bot.apple_status.report import Subscription
from bot.channels.limits import TELEGRAM, MessageLimits
from bot.content.knowledge import Device, Knowledge
from bot.content.languages import LANGUAGES
from bot.content.locales import Html, Locales, pick_lang
from bot.content.status_map import ServiceMap
from bot.conversation.callbacks import Action, Callback, decode
from bot.conversation.events import (
    Attachment,
    Command,
    Context,
    Event,
    Screenshot,
    Tap,
    Text,
    UnreadablePicture,
)
from bot.conversation.flows import account, admin, handover, status, topics, unmatched, walk
from bot.conversation.replies import Button, Keyboard, Reply, Result
from bot.conversation.state import WRITTEN, Outcome, OutcomeRecord, UserState
from bot.insights.learning import LearnedOrder
from bot.insights.learning import path_for as learned_path_for
from bot.matching.intents import IntentClassifier
from bot.matching.matcher import Matcher

# The commands shown in the bot's menu; admin-only and handover commands stay out of it.
MENU: tuple[str, ...] = ("start", "help", "reset", "lang", "device", "forget")

CommandHandler = Callable[["Engine", UserState, str, Context], Result]
ActionHandler = Callable[["Engine", UserState, Callback, Tap, Context], Result]
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(slots=True)
class Engine:
    """Route events to the flows; hold what every flow shares (content, matcher, helpers)."""

    knowledge: Knowledge
    matcher: Matcher
    locales: Locales
    detect_device: Callable[[str], Device | None] = field(default=lambda _text: None)
    status_services: ServiceMap = field(default_factory=ServiceMap)
    # Fix order learned from outcomes (bot/insights/learning.py), refreshed by the adapter; a
    # walk in progress keeps the path it started with.
    learned: LearnedOrder = field(default_factory=dict)
    # What one message of the channel holds: long relays are cut and long reports split to it.
    limits: MessageLimits = TELEGRAM
    # What a reply typed during a walk means ("didn't work", 「直りました」); None: not understood.
    intents: IntentClassifier | None = None

    # ----------------------------------------------------------------- routing

    def handle(self, state: UserState, event: Event, ctx: Context) -> Result:
        """Apply one event to one user's state."""
        if handover.handed_over(state):
            if not ctx.support:  # the support group was unset since: back to the bot
                state = handover.without_handover(state)
            elif isinstance(event, Text | Attachment):
                return handover.relay(self, state, event, ctx)
            elif isinstance(event, Screenshot | UnreadablePicture):
                return handover.relay(self, state, Attachment("photo"), ctx)
        if isinstance(event, Text):
            return walk.on_text(self, state, event.text, ctx)
        if isinstance(event, Tap):
            return self._on_tap(state, event, ctx)
        if isinstance(event, Command):
            handler = COMMANDS.get(event.name.lower())
            if handler is None:
                return self.say(state, ctx, "unknown_command", command=event.name[:32])
            return handler(self, state, event.arg.strip(), ctx)
        if isinstance(event, Screenshot):
            return walk.on_screenshot(self, state, event, ctx)
        if isinstance(event, UnreadablePicture):
            if event.caption.strip():  # the caption may name the error all the same
                return walk.on_text(self, state, event.caption, ctx)
            return self.say(state, ctx, f"picture.{event.reason.value}")
        return self.say(state, ctx, "attachment")

    def _on_tap(self, state: UserState, tap: Tap, ctx: Context) -> Result:
        cb = decode(tap.data, self.knowledge)
        if cb is None:  # forged, stale, or a button of a walk whose content a reload changed
            return walk.on_changed_tap(self, state, tap, ctx)
        handler = ACTIONS.get(cb.action)
        if handler is None:
            return self.stale(state, ctx)
        return handler(self, state, cb, tap, ctx)

    # ----------------------------------------------------------------- used by the adapters

    def lang(self, state: UserState, ctx: Context) -> str:
        """Return the language to answer this user in."""
        # /lang wins; else the language of what they last wrote; else their Telegram's.
        return pick_lang(state.lang or state.extra.get(WRITTEN), ctx.language_code)

    def written_language(self, text: str) -> str | None:
        """Return the language a message is written in, or None when it does not tell."""
        return LANGUAGES.written(text)

    def command_descriptions(self, lang: str) -> list[tuple[str, str]]:
        """Return (command, description) pairs for the bot's menu in one language."""
        return [(name, self.locales.t(lang, f"commands.{name}")) for name in MENU]

    def path_for(self, entry_id: str, device: Device) -> tuple[str, ...]:
        """Return the fixes a new walk goes through: learned order within stages, or authored.

        The authored last fix hands over to someone else (Apple Support, an administrator), so
        it stays last whatever was learned about the other fixes of its stage.
        """
        path = learned_path_for(self.knowledge, self.learned, entry_id, device)
        authored = self.knowledge.path_for(entry_id, device)
        if path and path[-1] != authored[-1]:
            path = (*(f for f in path if f != authored[-1]), authored[-1])
        return path

    def wants_status(self, event: Event, result: Result) -> bool:
        """Return True if `result`, decided without `ctx.status`, would use the live status."""
        return status.wants_status(self, event, result) or topics.wants_status(self, event, result)

    def status_fixed_reply(self, sub: Subscription) -> Reply:
        """Return the message that tells a subscriber Apple reports their services fixed."""
        return status.fixed_reply(self, sub)

    def from_support(self, state: UserState, text: str | None, ctx: Context) -> Result:
        """An operator replied in the support group: text, or None for a photo, a file…"""
        return handover.from_support(self, state, text, ctx)

    def support_done(self, state: UserState, ctx: Context) -> Result:
        """An operator ended the handover with /done."""
        return handover.support_done(self, state, ctx)

    def support_unreachable(self, state: UserState, ctx: Context) -> Result:
        """The support group could not be reached: end the handover, point to Apple."""
        return handover.support_unreachable(self, state, ctx)

    def support_undelivered(self, state: UserState, ctx: Context) -> Html:
        """Return the group notice that an operator's answer could not reach the user."""
        return handover.support_undelivered(self, state, ctx)

    def reloaded(self, lang: str) -> Reply:
        """Report a successful reload (called on the new engine)."""
        return admin.reloaded(self, lang)

    def reload_refused(self, lang: str, problems: Sequence[str]) -> tuple[Reply, ...]:
        """Report a refused reload: every problem, escaped, in messages the channel accepts."""
        return admin.reload_refused(self, lang, problems)

    # ----------------------------------------------------------------- helpers for the flows

    def t(self, lang: str, key: str, **params: object) -> Html:
        """Return a locale text (shorthand for the flows)."""
        return self.locales.t(lang, key, **params)

    def say(self, state: UserState, ctx: Context, key: str, **params: str) -> Result:
        """Answer with one locale text, the state unchanged."""
        return Result(state, (Reply(self.t(self.lang(state, ctx), key, **params)),))

    def stale(self, state: UserState, ctx: Context) -> Result:
        """Answer a button that no longer means anything."""
        return Result(state, toast=self.t(self.lang(state, ctx), "stale_button"), alert=True)

    def entry_label(self, lang: str, entry_id: str) -> str:
        """Return the label of a button that opens an entry."""
        return self.knowledge.entries[entry_id].title[lang]

    def device_buttons(
        self,
        lang: str,
        callback: Callable[[Device], Callback],
        only: Collection[Device] = tuple(Device),
    ) -> Keyboard:
        """Return one row per device (of `only`), each button carrying `callback(device)`."""
        return tuple(
            (Button(self.t(lang, f"device.{d.value}"), callback(d).encode()),)
            for d in Device
            if d in only
        )

    def restart_button(self, lang: str) -> Button:
        """Return the "start over" button."""
        return Button(self.t(lang, "buttons.restart"), Callback(Action.RESTART).encode())

    def abandon(self, state: UserState, ctx: Context) -> tuple[OutcomeRecord, ...]:
        """Return the history line of a walk left unfinished (none if there is no such walk)."""
        current = state.walk
        # At the final step the walk already ended (every fix tried, recorded as exhausted).
        if current is None or current.done or current.position >= len(current.path) - 1:
            return ()
        return (
            OutcomeRecord(
                state.user_id,
                current.entry,
                current.device,
                current.fix,
                Outcome.ABANDONED,
                ctx.now,
            ),
        )


def _merge(*tables: Mapping[_K, _V]) -> dict[_K, _V]:
    """Join the flows' tables; two flows claiming one command or action is a bug."""
    merged: dict[_K, _V] = {}
    for table in tables:
        for key, value in table.items():
            if key in merged:
                raise ValueError(f"{key!r} is handled by two flows")
            merged[key] = value
    return merged


# Every command the engine understands; admin-only ones check ctx.is_admin themselves and
# answer like an unknown command otherwise.
COMMANDS: dict[str, CommandHandler] = _merge(account.COMMANDS, handover.COMMANDS, admin.COMMANDS)
ACTIONS: dict[Action, ActionHandler] = _merge(
    walk.ACTIONS,
    account.ACTIONS,
    handover.ACTIONS,
    status.ACTIONS,
    unmatched.ACTIONS,
    topics.ACTIONS,
)
