"""Long polling that owns its offset: an update is confirmed to Telegram once it is in the inbox.

python-telegram-bot's Updater asks for the next offset (which tells Telegram the updates before
it arrived) as soon as it has fetched them, so a crash loses every update fetched and not yet
handled. Here a batch is written to the inbox in one transaction first; only then does the
next getUpdates confirm it. A webhook (a separate mode) keeps updates the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from telegram import Bot
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.channels.telegram.calls import retry_seconds
from bot.channels.telegram.processor import UpdateProcessor, parse_update, user_key
from bot.storage.base import Store, is_storage_failure
from bot.storage.queues import InboxUpdate

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "callback_query")
POLL_TIMEOUT = 10  # seconds Telegram holds a getUpdates open when there is nothing new
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


async def receive(
    bot: Bot, store: Store, processor: UpdateProcessor, raw: Sequence[dict[str, object]]
) -> None:
    """Keep updates (as received) in the inbox, then queue those not seen before.

    When this returns, the updates are durable: tell their sender they arrived (the next
    getUpdates offset, or a webhook's 200). Raises if the inbox cannot be written.
    """
    now = time.time()
    updates = [parse_update(u, bot) for u in raw]
    items = [
        InboxUpdate(u.update_id, json.dumps(r), now, user_key(u))
        for u, r in zip(updates, raw, strict=True)
    ]
    fresh = set(await store.inbox_add(items))
    for update in updates:
        # Shared inbox: one seen before may be waiting for an instance that died; handling
        # it again is harmless (done ones are skipped under the user's lock).
        if update.update_id in fresh or store.shared:
            processor.submit(update)


async def recover(bot: Bot, store: Store, processor: UpdateProcessor) -> int:
    """Queue the updates an earlier run received but did not finish; return how many."""
    pending = await store.inbox_pending()
    for item in pending:
        processor.submit(parse_update(json.loads(item.payload), bot))
    if pending:
        logger.info("handling %d update(s) received before the restart", len(pending))
    return len(pending)


class Poller:
    """Fetch updates, keep them in the inbox, confirm them, hand them to the processor."""

    def __init__(
        self,
        bot: Bot,
        store: Store,
        processor: UpdateProcessor,
        *,
        timeout: int = POLL_TIMEOUT,
        allowed_updates: Sequence[str] = ALLOWED_UPDATES,
    ) -> None:
        self._bot = bot
        self._store = store
        self._processor = processor
        self._timeout = timeout
        self._allowed = list(allowed_updates)
        self._offset = 0  # 0: the oldest update Telegram has not had confirmed

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until stop is set (raises InvalidToken)."""
        stopping = asyncio.create_task(stop.wait())
        failures = 0
        try:
            while not stop.is_set():
                if not await _until(self._processor.room(), stopping):
                    return
                fetch = asyncio.create_task(self._fetch())
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    await asyncio.gather(fetch, return_exceptions=True)
                    return
                try:
                    await self._take(fetch.result())  # raises what the fetch raised
                    failures = 0
                except InvalidToken:
                    raise
                except RetryAfter as exc:
                    await _pause(stop, retry_seconds(exc))
                except (Conflict, NetworkError) as exc:  # TimedOut is a NetworkError
                    failures += 1
                    wait = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1))
                    logger.warning("getUpdates failed (%s); trying again in %.1f s", exc, wait)
                    await _pause(stop, wait)
                except Exception as exc:
                    if not is_storage_failure(exc):
                        raise
                    # Not confirmed: Telegram keeps them, and the next getUpdates fetches them.
                    failures += 1
                    wait = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1))
                    logger.warning("cannot keep updates (%s); trying again in %.1f s", exc, wait)
                    await _pause(stop, wait)
        finally:
            stopping.cancel()

    async def _fetch(self) -> list[dict[str, object]]:
        # The raw JSON, not PTB's Update objects: that is what the inbox keeps.
        result = await self._bot.do_api_request(
            "getUpdates",
            api_kwargs={
                "offset": self._offset,
                "timeout": self._timeout,
                "allowed_updates": self._allowed,
            },
            read_timeout=self._timeout + 5,
        )
        if not isinstance(result, list):
            raise TelegramError(f"getUpdates answered {type(result).__name__}")
        return result

    async def _take(self, raw: list[dict[str, object]]) -> None:
        if not raw:
            return
        await receive(self._bot, self._store, self._processor, raw)
        # Asking for the next offset confirms these to Telegram: only now that they are kept.
        self._offset = max(int(str(u["update_id"])) for u in raw) + 1


async def _until(wait: Coroutine[Any, Any, None], stopping: asyncio.Task[Any]) -> bool:
    """Wait for `wait` unless stopping ends first; return False if it did."""
    waiting = asyncio.ensure_future(wait)
    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        return True
    waiting.cancel()
    return False


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
