"""The inbox and the outbox: updates received but not yet handled, messages decided but not sent.

An update is kept in the inbox (its JSON, as the channel received it) before the channel tells
its sender that it arrived; the turn that handles it marks it done in the transaction that
saves the new state, so it is handled once whatever crashes when. What a turn decides to send
goes into the outbox in that same transaction; a sender (bot/channels/outbox.py) delivers it
and deletes it. Both are rows of JSON so that a newer bot can read what an older one left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.conversation.replies import Button, Keyboard

# A processed update is remembered this long after it was handled, so that the same update
# delivered again (Telegram keeps an unconfirmed update for at most a day) is skipped.
PROCESSED_KEEP_SECONDS = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class InboxUpdate:
    """One update as received: its id, its JSON, when it came."""

    update_id: int
    payload: str
    received_at: float
    user_key: int | None = None  # whose turn it is (a user, or a group): their updates in order


class Kind(StrEnum):
    """What a message in the outbox does."""

    SEND = "send"  # a new message
    EDIT = "edit"  # replace the tapped message (a new one if it cannot be edited)
    ANSWER = "answer"  # answer a button press (stops the spinner; may show a notice)


@dataclass(frozen=True, slots=True)
class Anchor:
    """The walk whose buttons a message carries: its id goes into the walk once it is known.

    `expected` is the walk's message id saved with the turn; a later turn that changed it wins.
    """

    user_id: int
    started_at: float
    expected: int | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One thing to say to a chat, decided by a turn and delivered after it."""

    kind: Kind
    chat_id: int
    text: str | None = None  # the HTML of a message; the notice of an answer
    buttons: Keyboard = ()
    message_id: int | None = None  # the message an edit replaces
    callback_id: str | None = None  # the button press an answer is for
    alert: bool = False
    anchor: Anchor | None = None

    def to_json(self) -> str:
        """Serialise for the outbox row."""
        data: dict[str, Any] = {"kind": self.kind.value, "chat_id": self.chat_id}
        if self.text is not None:
            data["text"] = self.text
        if self.buttons:
            data["buttons"] = [
                [{"label": b.label, "data": b.data, "url": b.url} for b in row]
                for row in self.buttons
            ]
        if self.message_id is not None:
            data["message_id"] = self.message_id
        if self.callback_id is not None:
            data["callback_id"] = self.callback_id
        if self.alert:
            data["alert"] = True
        if self.anchor is not None:
            a = self.anchor
            data["anchor"] = {
                "user_id": a.user_id,
                "started_at": a.started_at,
                "expected": a.expected,
            }
        return json.dumps(data)  # ASCII: a lone surrogate cannot break the row

    @classmethod
    def from_json(cls, blob: str) -> Outgoing:
        """Read an outbox row (raises ValueError when it is not one)."""
        try:
            data = json.loads(blob)
            buttons = tuple(
                tuple(Button(b["label"], b.get("data"), b.get("url")) for b in row)
                for row in data.get("buttons", ())
            )
            raw_anchor = data.get("anchor")
            anchor = (
                None
                if raw_anchor is None
                else Anchor(
                    int(raw_anchor["user_id"]),
                    float(raw_anchor["started_at"]),
                    None if raw_anchor["expected"] is None else int(raw_anchor["expected"]),
                )
            )
            return cls(
                Kind(data["kind"]),
                int(data["chat_id"]),
                data.get("text"),
                buttons,
                data.get("message_id"),
                data.get("callback_id"),
                bool(data.get("alert", False)),
                anchor,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an outbox message: {exc}") from exc


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A message in the outbox: its place in the queue, what it is, when it was decided."""

    id: int
    message: Outgoing
    created_at: float
