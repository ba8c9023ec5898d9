"""What comes out of the conversation: replies to show, and effects for the channel to carry out."""

from __future__ import annotations

from dataclasses import dataclass

from bot.content.knowledge import Device
from bot.content.locales import Html
from bot.conversation.state import OutcomeRecord, UserState
from bot.insights.stats import DEFAULT_WINDOWS
from bot.insights.unmatched import UnmatchedQuery


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
class Result:
    """What the engine decided: the state to persist, the history lines, what to show."""

    state: UserState
    replies: tuple[Reply, ...] = ()
    records: tuple[OutcomeRecord, ...] = ()
    toast: str | None = None  # the short notice that answers a button press
    alert: bool = False
    effects: tuple[Effect, ...] = ()


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class Subscribe(Effect):
    """Message this user once Apple reports these services fixed (the user tapped Notify)."""

    entry: str
    device: Device
    lang: str  # the feed language the service names come from
    services: tuple[str, ...]


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


@dataclass(frozen=True, slots=True)
class ShowStats(Effect):
    """An admin asked for /stats: send the outcome report for these periods (days) and a chart."""

    lang: str
    windows: tuple[int, ...] = DEFAULT_WINDOWS


@dataclass(frozen=True, slots=True)
class RecordUnmatched(Effect):
    """Keep a question that matched nothing, or the choice made after it."""

    query: UnmatchedQuery
