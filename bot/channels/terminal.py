"""The terminal channel: the same service and engine as on Telegram, buttons as numbered choices.

The person at the terminal owns the files and the database, so they are an admin (/stats,
/reload work); what needs Telegram (status notifications, a person from the team) says so.
"""

from __future__ import annotations

import asyncio
import html
import re
from dataclasses import dataclass, field
from typing import TextIO

from bot.channels.base import Incoming, MessageLimits, Turn
from bot.conversation.events import Attachment, Command, Context, Event, Tap, Text
from bot.conversation.replies import CopyToUser, Reply, Subscribe, ToSupport
from bot.service import ConversationService, Services
from bot.storage.unicode import valid_unicode

_TAG = re.compile(r"<[^>]+>")
TERMINAL_USER = 1  # the one user of a terminal chat
TAP = "terminal"  # the callback id of every choice typed at the terminal
QUIT = ("/quit", "/exit")


def to_plain(text: str) -> str:
    """Turn the engine's Telegram HTML into plain terminal text."""
    return html.unescape(_TAG.sub("", text))


@dataclass(slots=True)
class Choice:
    """A button shown as a number."""

    label: str
    data: str | None
    url: str | None


@dataclass(slots=True)
class TerminalChannel:
    """The channel port on a text stream: every message printed, no length limit."""

    out: TextIO
    limits: MessageLimits = field(default_factory=MessageLimits)
    choices: list[Choice] = field(default_factory=list)  # the newest message's buttons
    message_id: int = 0  # the newest message's id

    async def send(self, chat_id: int, reply: Reply) -> int:
        """Print a new message and its choices."""
        self.message_id += 1
        self._print(reply)
        return self.message_id

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> int | None:
        """Print the message again in its new form (a terminal cannot change what it printed)."""
        self._print(reply)
        return message_id

    async def answer(self, callback_id: str, text: str | None, alert: bool) -> None:
        """Print the notice that answers a choice, if any."""
        if text:
            self.out.write(f"  ({to_plain(text)})\n")

    def say(self, text: str) -> None:
        """Print a notice of the terminal itself (a locale string)."""
        self.out.write(f"\n{to_plain(text)}\n\n")

    def _print(self, reply: Reply) -> None:
        self.out.write("\n" + to_plain(reply.text) + "\n")
        self.choices = [Choice(b.label, b.data, b.url) for row in reply.buttons for b in row]
        for n, choice in enumerate(self.choices, 1):
            suffix = f"  {choice.url}" if choice.url else ""
            self.out.write(f"  [{n}] {choice.label}{suffix}\n")
        self.out.write("\n")
        self.out.flush()


@dataclass(slots=True)
class TerminalChat:
    """A one-user conversation on a text stream."""

    service: ConversationService
    channel: TerminalChannel
    language_code: str
    user_id: int = TERMINAL_USER

    async def say(self, line: str) -> None:
        """Handle one line typed by the user."""
        line = valid_unicode(line).strip()  # undecodable input arrives as lone surrogates
        event: Event
        callback_id = None
        if line.isdigit() and 1 <= int(line) <= len(self.channel.choices):
            choice = self.channel.choices[int(line) - 1]
            if choice.url is not None:
                self.channel.out.write(f"  → open {choice.url}\n")
                return
            event, callback_id = Tap(choice.data or "", self.channel.message_id), TAP
        elif line.startswith("/"):
            name, _, arg = line[1:].partition(" ")
            event = Command(name, arg)
        elif line:
            event = Text(line)
        else:
            event = Attachment("empty")
        incoming = Incoming(
            event, self.user_id, self.user_id, self.language_code, callback_id=callback_id
        )
        await self.service.handle(incoming)

    async def run(self, lines: TextIO, *, interactive: bool = False) -> None:
        """Greet, then handle every line until the end of input or /quit."""
        await self.say("/start")
        while True:
            if interactive:
                self.channel.out.write("> ")
                self.channel.out.flush()
            line = await asyncio.to_thread(lines.readline)
            if not line or line.strip() in QUIT:
                return
            await self.say(line)


def terminal_chat(services: Services, out: TextIO, language_code: str) -> TerminalChat:
    """Compose a terminal chat: the service over a terminal channel, its effects offline."""
    channel = TerminalChannel(out)
    service = services.conversation(channel, admin_ids=frozenset({TERMINAL_USER}))

    async def subscribe(effect: Subscribe, turn: Turn) -> None:
        channel.say(turn.engine.locales.t(effect.lang, "terminal.notify_needs_telegram"))

    async def to_support(effect: ToSupport, turn: Turn) -> None:
        # Without a support group the engine opens no handover (and ends one opened on
        # Telegram, in a shared database): only a notice for the group could come here.
        if effect.from_user:
            lang = turn.engine.lang(turn.state, Context(now=0.0, language_code=language_code))
            channel.say(turn.engine.locales.t(lang, "terminal.person_needs_telegram"))

    async def copy_to_user(effect: CopyToUser, turn: Turn) -> None:
        """Only an operator's message in the support group asks for this: never here."""

    service.handlers.register(Subscribe, subscribe)
    service.handlers.register(ToSupport, to_support)
    service.handlers.register(CopyToUser, copy_to_user)
    return TerminalChat(service, channel, language_code)
