"""Photos and image files: download within the limits, read their text off the event loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.channels.telegram.calls import with_retry
from bot.conversation.events import Screenshot, Unreadable, UnreadablePicture
from bot.ocr import MAX_BYTES as OCR_MAX_BYTES
from bot.ocr import MAX_SIDE as OCR_MAX_SIDE
from bot.ocr import ImageRejected, OcrPool, OcrUnavailable

logger = logging.getLogger(__name__)

OCR_TIMEOUT = 20.0  # seconds one screenshot may take to read, queueing included


@dataclass(frozen=True, slots=True)
class Picture:
    """A photo or image file to read before the engine sees it (Telegram-side facts only)."""

    file_id: str
    file_size: int | None
    width: int | None
    height: int | None
    caption: str


def picture_of(message: Message) -> Picture | None:
    """Return the picture a message carries, if any (the largest size of a photo)."""
    caption = message.caption or ""
    if message.photo:
        best = message.photo[-1]  # Telegram lists the sizes smallest first
        return Picture(best.file_id, best.file_size, best.width, best.height, caption)
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return Picture(document.file_id, document.file_size, None, None, caption)
    return None


@dataclass(frozen=True, slots=True)
class PictureReader:
    """Download a picture and read its text; the bytes are not kept."""

    bot: Bot
    ocr: OcrPool | None  # None: Tesseract is not installed

    async def read(self, chat_id: int, picture: Picture) -> Screenshot | UnreadablePicture:
        """Return what the picture says, or why it could not be read."""
        caption = picture.caption
        if self.ocr is None:
            return UnreadablePicture(Unreadable.UNAVAILABLE, caption)
        if (picture.file_size or 0) > OCR_MAX_BYTES or max(
            picture.width or 0, picture.height or 0
        ) > OCR_MAX_SIDE:
            return UnreadablePicture(Unreadable.TOO_LARGE, caption)
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
            file = await with_retry(lambda: self.bot.get_file(picture.file_id))
            data = bytes(await file.download_as_bytearray())
            text = await self.ocr.read(data, OCR_TIMEOUT)
        except ImageRejected as exc:
            reason = Unreadable.NOT_IMAGE if exc.reason == "not_an_image" else Unreadable.TOO_LARGE
            return UnreadablePicture(reason, caption)
        except (OcrUnavailable, TimeoutError, TelegramError) as exc:
            logger.warning("could not read a picture: %s", exc)
            return UnreadablePicture(Unreadable.UNAVAILABLE, caption)
        logger.info("read %d characters from a picture", len(text))
        return Screenshot(text, caption)
