"""Webhook mode (`python -m bot serve`): Telegram POSTs each update; we answer once it is kept.

The server is aiohttp.web: aiohttp is already a dependency (the Bot API client, transport.py),
it runs on the bot's own event loop beside python-telegram-bot's Application (which runs
without an Updater), and it is small; no second server framework to install and tune.

POST /telegram takes one update: the secret header must match (else 401, nothing kept); the
update is written to the inbox (the same one as long polling, polling.py) before the 200, so
Telegram's next update of that chat comes only once this one is durable; an update seen before
is answered 200 again; a database failure is a 500, and Telegram delivers it again. GET
/healthz is 200 while the database answers and the knowledge is loaded.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Sequence

from aiohttp import web
from telegram import Bot, Update

from bot.channels.outbox import Outbox
from bot.channels.shared_outbox import SharedOutbox
from bot.channels.telegram.polling import ALLOWED_UPDATES, receive
from bot.channels.telegram.processor import Handle, UpdateProcessor, parse_update, user_key
from bot.config import WebhookSettings
from bot.live import LiveEngine
from bot.storage.base import Store, is_storage_failure

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram"
HEALTH_PATH = "/healthz"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1024 * 1024  # an update is a few kB; Telegram's largest are far below this
MAX_CONNECTIONS = 40  # setWebhook: Telegram's default of parallel deliveries
HEALTH_TIMEOUT = 2.0  # seconds the database gets to answer /healthz
SWEEP_SECONDS = 2.0  # how often a shared inbox and outbox are searched for what was left
STALE_SECONDS = 5.0  # an update pending this long was left (its instance died, or is slow)


def in_inbox_order(bot: Bot, store: Store, handle: Handle) -> Handle:
    """Handle an update after its user's earlier ones still in the shared inbox, each once.

    Several instances receive one user's updates (Telegram sends the next once the last is
    kept, to whichever instance); the processor holds the user's lock across instances, and
    under it the user's pending updates are handled oldest first. One that another instance
    handled already is no longer pending, so nothing is handled twice.
    """

    async def in_order(update: Update) -> None:
        for item in await store.inbox_pending(user_key(update)):
            if item.update_id > update.update_id:
                break
            if item.update_id == update.update_id:
                await handle(update)
                continue
            earlier = parse_update(json.loads(item.payload), bot)
            try:
                await handle(earlier)
            except Exception as exc:
                if is_storage_failure(exc):
                    raise
                logger.error("unhandled error in update %s", item.update_id, exc_info=exc)
                await store.inbox_done(item.update_id)

    return in_order


class WebhookRoutes:
    """The HTTP side of webhook mode: the update route and the health check."""

    def __init__(
        self,
        bot: Bot,
        store: Store,
        processor: UpdateProcessor,
        live: LiveEngine,
        secret: str,
    ) -> None:
        self._bot = bot
        self._store = store
        self._processor = processor
        self._live = live
        self._secret = secret.encode()
        self.ready = False  # set once the knowledge is loaded and the inbox recovered

    def application(self) -> web.Application:
        """Return the aiohttp application (the body limit answers 413 above it)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(WEBHOOK_PATH, self.telegram)
        app.router.add_get(HEALTH_PATH, self.healthz)
        return app

    async def telegram(self, request: web.Request) -> web.Response:
        """Keep one update in the inbox, then answer 200 (401, 400, 413, 500 otherwise)."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):  # constant time: no timing oracle
            return web.Response(status=401)
        if not self.ready:
            return web.Response(status=503)  # Telegram delivers it again shortly
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            logger.warning("refused a webhook body over %d bytes", MAX_BODY_BYTES)
            return web.Response(status=413)
        try:
            raw = json.loads(body)
            if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
                raise ValueError("not an update")
        except ValueError as exc:  # Telegram would send the same bytes again: refuse them
            logger.warning("refused a malformed webhook body (%d bytes): %s", len(body), exc)
            return web.Response(status=400)
        try:
            await receive(self._bot, self._store, self._processor, [raw])
        except Exception as exc:  # not kept: Telegram delivers it again
            logger.warning(
                "could not keep update %s (%s); asking for it again", raw["update_id"], exc
            )
            return web.Response(status=500)
        return web.Response(status=200)

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when the database answers and the knowledge is loaded, else 503."""
        if not self.ready or self._live.engine is None:
            return web.Response(status=503, text="starting\n")
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await self._store.ping()
        except Exception as exc:
            logger.warning("health check: the database does not answer (%s)", type(exc).__name__)
            return web.Response(status=503, text="database unavailable\n")
        return web.Response(text="ok\n")


async def set_webhook(bot: Bot, settings: WebhookSettings, allowed: Sequence[str]) -> None:
    """Register TELEGRAM_WEBHOOK_URL with Telegram, with the secret and our limits."""
    assert settings.url is not None
    await bot.set_webhook(
        settings.url,
        secret_token=settings.secret,
        allowed_updates=list(allowed),
        max_connections=MAX_CONNECTIONS,
    )
    logger.info("webhook registered at %s", settings.url)


async def sweep_forever(
    bot: Bot, store: Store, processor: UpdateProcessor, outbox: Outbox, stop: asyncio.Event
) -> None:
    """Shared inbox and outbox: every few seconds, take up what another instance left."""
    while not stop.is_set():
        try:
            async with asyncio.timeout(SWEEP_SECONDS):
                await stop.wait()
            return
        except TimeoutError:
            pass
        try:
            now = time.time()
            for item in await store.inbox_pending():
                if now - item.received_at <= STALE_SECONDS:
                    continue
                update = parse_update(json.loads(item.payload), bot)
                if not processor.busy(user_key(update)):  # ours, still queued: not left
                    processor.submit(update)
            if isinstance(outbox, SharedOutbox):
                await outbox.sweep(now)
        except Exception as exc:
            logger.warning("could not look for updates left in the inbox: %s", exc)


__all__ = ["ALLOWED_UPDATES", "WebhookRoutes", "in_inbox_order", "set_webhook", "sweep_forever"]
