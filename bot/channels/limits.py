"""How much one message may hold, and fitting text into it: owned by the channels, not the talk.

Every channel has a limit on one message's text (Telegram: 4096 UTF-16 code units). The
conversation still decides what to say when there is too much (a relayed message is cut, a
list of problems ends with "and N more"), so it is given the channel's `MessageLimits`; the
splitter below is shared by whoever must cut a long text into messages. Pure: no I/O.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.content.locales import Html, escape
from bot.content.text import utf16_len

TELEGRAM_TEXT = 4096  # UTF-16 code units of one Telegram message's text
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class MessageLimits:
    """What one message of a channel may hold."""

    text: int = TELEGRAM_TEXT  # UTF-16 code units of one message's text


TELEGRAM = MessageLimits(text=TELEGRAM_TEXT)
# The terminal has no limit of its own; it shares Telegram's so that a conversation tried there
# is the one Telegram users get.
TERMINAL = TELEGRAM


def cut(text: str, units: int) -> str:
    """Return the longest start of `text` within `units` UTF-16 units (whole characters)."""
    if utf16_len(text) <= units:
        return text
    kept = text.encode("utf-16-le")[: units * 2].decode("utf-16-le", "ignore")
    return kept


def split_blocks(blocks: Sequence[str], limit: int = TELEGRAM_TEXT) -> list[Html]:
    """Join blocks into messages of at most `limit` UTF-16 units, never cutting a line.

    Blocks are separated by a blank line; a block too long for one message is split between
    its lines. Every line is whole HTML (tags open and close on it), so every part is too.
    """
    messages: list[str] = []
    current = ""
    for block in blocks:
        for piece in _pieces(block, limit):
            joined = f"{current}\n\n{piece}" if current else piece
            if utf16_len(joined) <= limit:
                current = joined
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return [Html(m) for m in messages]


def _pieces(block: str, limit: int) -> list[str]:
    if utf16_len(block) <= limit:
        return [block]
    pieces: list[str] = []
    current = ""
    for line in block.split("\n"):
        if utf16_len(line) > limit:  # no line of our texts comes near; never send a refusal
            line = escape(html.unescape(_TAG.sub("", line))[: limit // 5])
        joined = f"{current}\n{line}" if current else line
        if utf16_len(joined) <= limit:
            current = joined
        else:
            pieces.append(current)
            current = line
    if current:
        pieces.append(current)
    return pieces
