"""Bot API calls: waiting out flood limits, and Telegram's refusals as the port's errors."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import LinkPreviewOptions
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.channels.base import DeliveryError

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RETRIES = 3  # attempts after a 429 before a call is given up (and logged)
MAX_RETRY_WAIT = 60.0  # seconds: a longer flood wait is not waited out inside one update
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def retry_seconds(exc: RetryAfter) -> float:
    """Return how long Telegram asks us to wait, in seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # int vs timedelta deprecation in PTB 22
        value: int | float | dtm.timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def with_retry(call: Callable[[], Awaitable[T]]) -> T:
    """Run a Bot API call, waiting out 429 flood limits a few times before giving up."""
    for attempt in range(MAX_RETRIES + 1):
        try:
            return await call()
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            if attempt == MAX_RETRIES or wait > MAX_RETRY_WAIT:
                raise
            logger.warning("flood limit: waiting %.1f s before retrying", wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def delivery_error(exc: TelegramError) -> DeliveryError:
    """Translate a Bot API failure: refusals are for good, the rest may pass."""
    if isinstance(exc, Forbidden | BadRequest):
        return DeliveryError(exc.message, permanent=True)
    if isinstance(exc, RetryAfter):
        wait = retry_seconds(exc)
        return DeliveryError(f"flood limit ({wait:g} s)", permanent=False, retry_after=wait)
    return DeliveryError(f"{type(exc).__name__}: {exc.message}", permanent=False)


def is_not_modified(exc: BadRequest) -> bool:
    """Return True for Telegram's refusal of an edit that changes nothing."""
    return "message is not modified" in exc.message.lower()


def edit_impossible(exc: BadRequest) -> bool:
    """Return True if the message is gone or too old to edit (send a new one instead)."""
    text = exc.message.lower()
    return "message to edit not found" in text or "message can't be edited" in text
