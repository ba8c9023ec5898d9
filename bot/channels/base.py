"""The channel port: what the service needs from a channel, and what a channel hands to it.

A channel (Telegram, the terminal) turns its own updates into `Incoming` events, and carries
out the engine's replies through `send`, `edit` and `answer`. Effects are carried out by typed
handlers registered per effect type (`EffectHandlers`): the service registers those every
channel shares, a channel adds or replaces its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.conversation.engine import Engine
from bot.conversation.events import Event
from bot.conversation.replies import Effect, Reply
from bot.conversation.state import UserState
from bot.errors import BotError

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Effect)


def utf16_units(text: str) -> int:
    """Return the length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class MessageLimits:
    """How long one message may be on a channel, and how the channel counts its length."""

    text: int | None = None  # None: no limit
    count: Callable[[str], int] = len

    def fits(self, text: str) -> bool:
        """Return True if `text` can go out as one message."""
        return self.text is None or self.count(text) <= self.text


@dataclass(frozen=True, slots=True)
class MessageRef:
    """One message on a channel: the chat it is in and its id there."""

    chat_id: int
    message_id: int


class DeliveryError(BotError):
    """A message did not arrive; `permanent`: retrying will not help (blocked, chat gone).

    `retry_after`: the channel asked to wait this many seconds before trying again.
    """

    def __init__(self, detail: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    """What the service says things through."""

    @property
    def limits(self) -> MessageLimits:
        """Return this channel's message limits."""
        ...

    async def send(self, chat_id: int, reply: Reply) -> int:
        """Send a new message; return its id (raises DeliveryError)."""
        ...

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> int | None:
        """Replace a message; None if it can no longer be edited (raises DeliveryError)."""
        ...

    async def answer(self, callback_id: str, text: str | None, alert: bool) -> None:
        """Answer a button press (stops the spinner; `text` shows as a notice)."""
        ...


@dataclass(frozen=True, slots=True)
class Incoming:
    """An event from a user, with what the channel knows about them."""

    event: Event
    user_id: int
    chat_id: int
    language_code: str | None = None
    user_name: str = ""  # the display name, for the support group
    user_handle: str = ""  # the @username without the @, if any
    source: MessageRef | None = None  # the user's message, when the event is one
    callback_id: str | None = None  # the button press to answer, when the event is a tap
    update_id: int | None = None  # the inbox update it came in, marked done with the turn


@dataclass(frozen=True, slots=True)
class Turn:
    """One event being handled for one user, after the engine decided and the state was saved."""

    user_id: int
    chat_id: int  # where the user reads our replies
    engine: Engine  # the engine this update was decided with (a reload swaps it for the next)
    state: UserState
    tapped: int | None = None  # the message whose button was pressed
    source: MessageRef | None = None  # the message being handled (the user's, an operator's)
    language_code: str | None = None  # the user's app language, when the user sent the event


Handler = Callable[[Effect, Turn], Awaitable[None]]


class EffectHandlers:
    """What a channel does for each type of engine effect; unknown ones are logged."""

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[type[Effect], Handler] = {}

    def register(self, kind: type[E], handler: Callable[[E, Turn], Awaitable[None]]) -> None:
        """Carry out effects of type `kind` with `handler` (replacing an earlier one)."""

        async def run(effect: Effect, turn: Turn) -> None:
            if not isinstance(effect, kind):  # pragma: no cover - keyed by the type
                raise TypeError(f"{type(effect).__name__} is not a {kind.__name__}")
            await handler(effect, turn)

        self._handlers[kind] = run

    def handles(self, kind: type[Effect]) -> bool:
        """Return True if effects of type `kind` have a handler."""
        return kind in self._handlers

    async def apply(self, effect: Effect, turn: Turn) -> None:
        """Carry out one effect; a failure to deliver is logged, not raised."""
        handler = self._handlers.get(type(effect))
        if handler is None:
            logger.error("no handler for effect %s", type(effect).__name__)
            return
        try:
            await handler(effect, turn)
        except DeliveryError as exc:
            logger.warning("effect %s failed: %s", type(effect).__name__, exc)
