"""The Telegram adapter: updates into events for the service, replies into Bot API calls.

`TelegramChannel` is the channel port over the Bot API; `TelegramAdapter` receives every update
and hands private chats to the service and groups to the support group (support.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Bot, InputFile, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError

from bot.channels.base import Incoming, MessageLimits, MessageRef, Turn, utf16_units
from bot.channels.telegram.calls import (
    NO_PREVIEW,
    delivery_error,
    edit_impossible,
    is_not_modified,
    with_retry,
)
from bot.channels.telegram.pictures import Picture, PictureReader, picture_of
from bot.channels.telegram.support import SupportGroup
from bot.channels.telegram.transport import AiohttpRequest
from bot.conversation.events import Attachment, Command, Event, Tap, Text
from bot.conversation.replies import Button, Keyboard, Reply, ShowStats
from bot.service import ConversationService
from bot.storage.unicode import valid_unicode

logger = logging.getLogger(__name__)

# Telegram's limit for one message's text, counted in UTF-16 code units.
TELEGRAM_LIMITS = MessageLimits(text=4096, count=utf16_units)
SHOWN_LIMIT = 10_000  # recent messages whose content is remembered: repeated taps come close
KEYBOARDS = 4096  # keyboards kept in their JSON form (the same few are shown again and again)
# The parameters every message carries, as Bot.send_message sends them.
_MESSAGE_FIELDS = {"parse_mode": ParseMode.HTML.value, "link_preview_options": NO_PREVIEW.to_json()}
_ATTACHMENT_KINDS = (
    "sticker",
    "photo",
    "voice",
    "video",
    "video_note",
    "audio",
    "document",
    "animation",
    "location",
    "contact",
    "poll",
)


def to_event(update: Update) -> Event | Picture | None:
    """Translate a Telegram update into an engine event (None: nothing for us to do)."""
    query = update.callback_query
    if query is not None:
        message_id = query.message.message_id if query.message is not None else None
        return Tap(valid_unicode(query.data or ""), message_id)
    message = update.message
    if message is None:
        return None
    text = valid_unicode(message.text) if message.text is not None else None
    if text is not None:
        if text.startswith("/"):
            head, _, arg = text[1:].partition(" ")
            name = head.split("@", 1)[0]
            if name:
                return Command(name, arg.strip())
        return Text(text)
    picture = picture_of(message)
    if picture is not None:
        return picture
    if message.caption:
        return Text(valid_unicode(message.caption))
    for kind in _ATTACHMENT_KINDS:
        if getattr(message, kind, None):
            return Attachment(kind)
    return Attachment("other")


@functools.lru_cache(maxsize=KEYBOARDS)
def markup_json(buttons: Keyboard) -> str | None:
    """Return an inline keyboard's reply_markup parameter (None: no buttons).

    The same bytes as PTB's InlineKeyboardMarkup.to_json (keys sorted, as its to_dict gives
    them), written without its objects: 6 against 77 us per keyboard not seen before.
    """
    if not buttons:
        return None
    rows = [[_button(b) for b in row] for row in buttons]
    return json.dumps({"inline_keyboard": rows}, sort_keys=True)


def _button(button: Button) -> dict[str, str]:
    """An InlineKeyboardButton's JSON: a URL button, or one with callback data."""
    if button.url:
        return {"text": button.label, "url": button.url}
    if button.data is None:
        return {"text": button.label}
    return {"callback_data": button.data, "text": button.label}


def message_fields(chat_id: int, reply: Reply) -> dict[str, str]:
    """Return the parameters of sendMessage (and editMessageText, with message_id)."""
    fields = {"chat_id": str(chat_id), "text": reply.text, **_MESSAGE_FIELDS}
    markup = markup_json(reply.buttons)
    if markup is not None:
        fields["reply_markup"] = markup
    return fields


class Shown:
    """What this process last put in each message: a repeated tap then needs no edit.

    Telegram refuses an edit that changes nothing (400 "message is not modified"). Bounded:
    the oldest messages are forgotten (and after a restart all are); their edits are sent,
    and a refusal is still taken as success.
    """

    __slots__ = ("_limit", "_shown")

    def __init__(self, limit: int = SHOWN_LIMIT) -> None:
        self._limit = limit
        self._shown: OrderedDict[tuple[int, int], int] = OrderedDict()

    def remember(self, chat_id: int, message_id: int, reply: Reply) -> None:
        """Note that the message shows this reply now."""
        key = (chat_id, message_id)
        self._shown[key] = _fingerprint(reply)
        self._shown.move_to_end(key)
        if len(self._shown) > self._limit:
            self._shown.popitem(last=False)

    def shows(self, chat_id: int, message_id: int, reply: Reply) -> bool:
        """Return True if the message already shows this reply."""
        return self._shown.get((chat_id, message_id)) == _fingerprint(reply)


def _fingerprint(reply: Reply) -> int:
    return hash((reply.text, reply.buttons))


@dataclass(frozen=True, slots=True)
class TelegramChannel:
    """The channel port over the Bot API: HTML messages, inline keyboards, no link previews.

    Messages and answers go through `request` (the bot's own) with their parameters written
    here (AiohttpRequest.call): the same requests as Bot.send_message and the like make.
    """

    bot: Bot
    request: AiohttpRequest
    limits: MessageLimits = TELEGRAM_LIMITS
    shown: Shown = field(default_factory=Shown)

    async def _call(self, method: str, fields: dict[str, str]) -> Any:
        return await self.request.call(f"{self.bot.base_url}/{method}", fields)

    async def send(self, chat_id: int, reply: Reply) -> int:
        """Send a new message; return its id (raises DeliveryError)."""
        try:  # no retry here: the outbox retries, and keeps the chat's order meanwhile
            message = await self._call("sendMessage", message_fields(chat_id, reply))
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        message_id = int(message["message_id"])
        self.shown.remember(chat_id, message_id, reply)
        return message_id

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> int | None:
        """Replace a message; None if it can no longer be edited (raises DeliveryError)."""
        if self.shown.shows(chat_id, message_id, reply):  # a repeated tap: nothing to change
            return message_id
        fields = message_fields(chat_id, reply)
        fields["message_id"] = str(message_id)
        try:
            await self._call("editMessageText", fields)
        except BadRequest as exc:
            if not is_not_modified(exc):  # not modified: it shows this already
                if edit_impossible(exc):
                    return None
                raise delivery_error(exc) from exc
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        self.shown.remember(chat_id, message_id, reply)
        return message_id

    async def answer(self, callback_id: str, text: str | None, alert: bool) -> None:
        """Answer a button press (raises DeliveryError)."""
        fields = {"callback_query_id": callback_id, "show_alert": "true" if alert else "false"}
        if text is not None:
            fields["text"] = text
        try:
            await self._call("answerCallbackQuery", fields)
        except TelegramError as exc:
            raise delivery_error(exc) from exc

    async def send_picture(self, chat_id: int, png: bytes, caption: str, name: str) -> None:
        """Send a PNG with an HTML caption (raises DeliveryError)."""
        try:
            await with_retry(
                lambda: self.bot.send_photo(
                    chat_id,
                    InputFile(png, filename=name),
                    caption=caption,
                    parse_mode=ParseMode.HTML,
                )
            )
        except TelegramError as exc:
            raise delivery_error(exc) from exc


def stats_with_chart(
    service: ConversationService, channel: TelegramChannel
) -> Callable[[ShowStats, Turn], Awaitable[None]]:
    """Return the /stats handler of Telegram: the report, then the solve-rate chart."""

    async def show_stats(effect: ShowStats, turn: Turn) -> None:
        from bot.insights.chart import solve_rate_png  # matplotlib: on the first /stats only
        from bot.insights.stats import fixes_in_order

        report = await service.send_stats(effect, turn)
        knowledge, locales = turn.engine.knowledge, turn.engine.locales
        widest = max(report.windows, key=lambda w: w.days)
        fixes = fixes_in_order(widest.fixes, knowledge)
        stage_of = {fix_id: fix.stage for fix_id, fix in knowledge.fixes.items()}
        png = await asyncio.to_thread(solve_rate_png, fixes, stage_of)
        caption = locales.t(effect.lang, "stats.chart_caption", days=widest.days)
        await channel.send_picture(turn.chat_id, png, caption, "solve-rate.png")

    return show_stats


@dataclass(frozen=True, slots=True)
class TelegramAdapter:
    """Receive every update: private chats go to the service, groups to the support group."""

    service: ConversationService
    support: SupportGroup
    pictures: PictureReader

    def received(self, update: Update) -> None:
        """An update is in the inbox, its turn to come: start what can start before it."""
        chat = update.effective_chat
        if chat is not None and chat.type == ChatType.PRIVATE:
            event = to_event(update)
            if event is not None and not isinstance(event, Picture):  # a picture: read first
                self.service.expect(event)

    async def on_update(self, update: Update) -> None:
        """Handle one update end to end; mark it done in the inbox."""
        if not await self._handle(update):
            await self.service.store.inbox_done(update.update_id)

    async def _handle(self, update: Update) -> bool:
        """Return True if a turn saved the update as done together with its state."""
        chat = update.effective_chat
        if chat is not None and chat.type != ChatType.PRIVATE:
            await self.support.on_group_update(update)
            return False
        incoming = to_event(update)
        user = update.effective_user
        if incoming is None or user is None or chat is None:
            return False
        if isinstance(incoming, Picture):
            event: Event = await self.pictures.read(chat.id, incoming)
        else:
            event = incoming
        message: Message | None = update.message
        query = update.callback_query
        await self.service.handle(
            Incoming(
                event,
                user.id,
                chat.id,
                language_code=user.language_code,
                user_name=valid_unicode(user.full_name),
                user_handle=valid_unicode(user.username or ""),
                source=MessageRef(chat.id, message.message_id) if message is not None else None,
                callback_id=query.id if query is not None else None,
                update_id=update.update_id,
            )
        )
        return True
