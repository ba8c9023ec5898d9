"""What comes into the conversation: the events a channel translates its updates into."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.apple_status.report import StatusReport


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

MAX_TEXT = 4000  # characters of a user's message the conversation looks at (Telegram: 4096)


def texts_to_match(event: Event) -> list[str]:
    """Return the texts the engine will match for this event, as it will match them."""
    if isinstance(event, Text):
        texts = [event.text]
    elif isinstance(event, Screenshot):
        texts = [" ".join(event.text.split()), event.caption]
    elif isinstance(event, UnreadablePicture):
        texts = [event.caption]
    else:
        return []
    return [t for t in (text.strip()[:MAX_TEXT] for text in texts) if t]


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
