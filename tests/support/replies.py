"""Reading engine replies in tests: button labels, callback data, URLs."""

from __future__ import annotations

from bot.conversation.replies import Reply


def labels(reply: Reply) -> list[str]:
    """Return every button label of a reply, row by row."""
    return [b.label for row in reply.buttons for b in row]


def button(reply: Reply, text: str) -> str:
    """Return the callback data of the first button whose label contains text."""
    for row in reply.buttons:
        for b in row:
            if text in b.label and b.data:
                return b.data
    raise AssertionError(f"no button {text!r} in {labels(reply)}")


def urls(reply: Reply) -> list[str]:
    """Return the URLs of a reply's link buttons."""
    return [b.url for row in reply.buttons for b in row if b.url]
