"""The terminal channel: the same engine as on Telegram, buttons shown as numbered choices."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from bot.conversation.engine import Engine
from bot.conversation.events import Attachment, Command, Context, Event, Tap, Text
from bot.conversation.replies import Forget, RecordUnmatched, Reply
from bot.storage.base import Store

_TAG = re.compile(r"<[^>]+>")


def to_plain(text: str) -> str:
    """Turn the engine's Telegram HTML into plain terminal text."""
    return html.unescape(_TAG.sub("", text))


@dataclass(slots=True)
class TerminalChat:
    """A one-user conversation on stdin/stdout."""

    engine: Engine
    store: Store
    language_code: str
    out: TextIO
    user_id: int = 1
    clock: Callable[[], float] = time.time
    _choices: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    _message_id: int = 0

    async def say(self, line: str) -> None:
        """Handle one line typed by the user."""
        line = line.strip()
        event: Event
        if line.isdigit() and 1 <= int(line) <= len(self._choices):
            _, data, url = self._choices[int(line) - 1]
            if url is not None:
                self.out.write(f"  → open {url}\n")
                return
            event = Tap(data or "", self._message_id)
        elif line.startswith("/"):
            name, _, arg = line[1:].partition(" ")
            event = Command(name, arg)
        elif line:
            event = Text(line)
        else:
            event = Attachment("empty")
        state = await self.store.load(self.user_id)
        result = self.engine.handle(state, event, Context(self.clock(), self.language_code))
        await self.store.save(result.state, result.records)
        for effect in result.effects:
            if isinstance(effect, RecordUnmatched):  # `bot unmatched` sees terminal chats too
                await self.store.record_unmatched(effect.query)
            elif isinstance(effect, Forget):  # /forget confirmed
                await self.store.forget(self.user_id)
                self._show(Reply(effect.notice, edit=True))
        if result.toast:
            self.out.write(f"  ({to_plain(result.toast)})\n")
        for reply in result.replies:
            self._show(reply)

    def _show(self, reply: Reply) -> None:
        if not reply.edit:
            self._message_id += 1
        self.out.write("\n" + to_plain(reply.text) + "\n")
        self._choices = [(b.label, b.data, b.url) for row in reply.buttons for b in row]
        for n, (label, _, url) in enumerate(self._choices, 1):
            suffix = f"  {url}" if url else ""
            self.out.write(f"  [{n}] {label}{suffix}\n")
        self.out.write("\n")
