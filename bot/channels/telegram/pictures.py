"""Photos and image files: download within the limits, read their text off the event loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from telegram import Bot, Message
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.channels.telegram.calls import with_retry
from bot.channels.telegram.transport import AiohttpRequest, TooLarge
from bot.conversation.events import Screenshot, Unreadable, UnreadablePicture
from bot.ocr import MAX_BYTES as OCR_MAX_BYTES
from bot.ocr import MAX_SIDE as OCR_MAX_SIDE
from bot.ocr import ImageRejected, OcrPool, OcrUnavailable
from bot.storage.unicode import valid_unicode

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
    caption = valid_unicode(message.caption or "")
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
    request: AiohttpRequest  # downloads stop at the size limit
    ocr: OcrPool | None  # None: Tesseract is not installed

    async def read(self, chat_id: int, picture: Picture) -> Screenshot | UnreadablePicture:
        """Return what the picture says, or why it could not be read."""
        caption = picture.caption
        if self.ocr is None:
            return UnreadablePicture(Unreadable.UNAVAILABLE, caption)
        if _too_large(picture.file_size, max(picture.width or 0, picture.height or 0)):
            return UnreadablePicture(Unreadable.TOO_LARGE, caption)
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
            file = await with_retry(lambda: self.bot.get_file(picture.file_id))
            if _too_large(file.file_size, 0):
                return UnreadablePicture(Unreadable.TOO_LARGE, caption)
            if not file.file_path:
                raise TelegramError("getFile gave no file_path")
            # Whatever the metadata said (or did not), no more than the limit is downloaded.
            data = await self.request.download(_encoded(file.file_path), OCR_MAX_BYTES)
            text = await self.ocr.read(data, OCR_TIMEOUT)
        except TooLarge:
            return UnreadablePicture(Unreadable.TOO_LARGE, caption)
        except ImageRejected as exc:
            reason = Unreadable.NOT_IMAGE if exc.reason == "not_an_image" else Unreadable.TOO_LARGE
            return UnreadablePicture(reason, caption)
        except (OcrUnavailable, TimeoutError, TelegramError) as exc:
            logger.warning("could not read a picture: %s", exc)
            return UnreadablePicture(Unreadable.UNAVAILABLE, caption)
        except Exception:  # a bug or an odd picture: the user still gets an answer
            logger.exception("reading a picture failed")
            return UnreadablePicture(Unreadable.UNAVAILABLE, caption)
        logger.info("read %d characters from a picture", len(text))
        return Screenshot(valid_unicode(text), caption)


def _too_large(size: int | None, side: int) -> bool:
    return (size or 0) > OCR_MAX_BYTES or side > OCR_MAX_SIDE


def _encoded(url: str) -> str:
    """Quote the path of a file URL (file paths may hold any character), as PTB does."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=quote(parts.path)))
