"""The python-telegram-bot Application: built from the settings and the composed services, run."""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from telegram import BotCommand, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ContextTypes
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.channels.outbox import Outbox
from bot.channels.telegram.adapter import TelegramAdapter, TelegramChannel, stats_with_chart
from bot.channels.telegram.calls import with_retry
from bot.channels.telegram.pictures import PictureReader
from bot.channels.telegram.polling import ALLOWED_UPDATES, Poller, recover
from bot.channels.telegram.processor import CONNECTION_POOL_SIZE, Handle, UpdateProcessor
from bot.channels.telegram.support import SupportGroup
from bot.channels.telegram.transport import AiohttpRequest
from bot.channels.telegram.webhook import (
    WebhookRoutes,
    in_inbox_order,
    set_webhook,
    sweep_forever,
)
from bot.config import Settings
from bot.content.languages import LANGUAGES
from bot.conversation.engine import Engine
from bot.conversation.replies import ShowStats
from bot.errors import StartupError
from bot.live import LiveEngine
from bot.service import DAY_SECONDS, Services, StatusPoller, prune_history

logger = logging.getLogger(__name__)

PRUNE_JOB = "prune-history"
STOP_TIMEOUT = 10.0  # seconds to finish the updates in flight; the rest wait in the inbox
App = Application[Any, Any, Any, Any, Any, Any]  # PTB's generic parameters: its defaults


@dataclass(frozen=True, slots=True)
class TelegramBot:
    """The parts a Telegram bot runs: PTB's Application (the Bot, the JobQueue), our updates."""

    app: App
    processor: UpdateProcessor  # handles updates from the inbox, each user's in order
    outbox: Outbox  # delivers what turns decided


def build_application(settings: Settings, services: Services) -> TelegramBot:
    """Assemble the python-telegram-bot Application around the service."""
    # PTB 22 warns on every 429 that RetryAfter.retry_after will become a timedelta; we read
    # both kinds (calls.retry_seconds). Ignoring it beats setting PTB_TIMEDELTA in os.environ.
    warnings.filterwarnings("ignore", category=PTBDeprecationWarning, message=".*retry_after")
    # polling.py asks for getUpdates' raw JSON on purpose (the inbox keeps it as received).
    warnings.filterwarnings("ignore", category=PTBUserWarning, message=".*Bot.getUpdates")
    request = AiohttpRequest(connection_pool_size=CONNECTION_POOL_SIZE)
    app = (
        Application.builder()
        .token(settings.token)
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_file_url)
        # No Updater: it would confirm updates to Telegram before they are kept (polling.py).
        .updater(None)
        # aiohttp instead of PTB's httpx: a quarter of the CPU per Bot API call
        # (transport.py); getUpdates has its own connection, as in PTB's default.
        .request(request)
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        .build()
    )
    channel = TelegramChannel(app.bot, request)
    service = services.conversation(
        channel, admin_ids=settings.admin_ids, support=settings.support_chat_id is not None
    )
    support = SupportGroup(
        app.bot, service, settings.support_chat_id, settings.support_operator_ids
    )
    support.register()
    service.handlers.register(ShowStats, stats_with_chart(service, channel))
    adapter = TelegramAdapter(service, support, PictureReader(app.bot, request, services.ocr))
    handle: Handle = adapter.on_update
    if services.store.shared:  # other instances receive this user's updates too
        handle = in_inbox_order(app.bot, services.store, handle)
    processor = UpdateProcessor(handle, services.store, services.locks, received=adapter.received)
    app.add_error_handler(on_error)

    async def new_menu(engine: Engine) -> None:  # the menu's texts may have changed
        await register_commands(app, engine)

    services.live.on_reload(new_menu)
    _schedule(app, settings, services, service.outbox)
    return TelegramBot(app, processor, service.outbox)


def _schedule(app: App, settings: Settings, services: Services, outbox: Outbox) -> None:
    """Run the service's schedules on PTB's JobQueue (started and stopped with the app)."""
    if app.job_queue is None:
        logger.warning("no JobQueue (python-telegram-bot[job-queue]): history is not pruned")
        if services.status is not None:
            logger.warning("no JobQueue: nobody is notified when Apple fixes an outage")
        return
    store = services.store
    if services.status is not None:
        poller = StatusPoller(services.live, store, services.status, outbox)
        polling_lead = store.leader("apple-status")

        async def poll(context: ContextTypes.DEFAULT_TYPE) -> None:
            # Several instances: only the one that leads asks Apple and tells subscribers.
            if polling_lead is None or await polling_lead.held():
                await poller.poll()

        # app.stop() waits for a poll in flight
        app.job_queue.run_repeating(
            poll,
            interval=settings.status_poll_seconds,
            first=settings.status_poll_seconds,
            name="apple-status",
        )

    pruning_lead = store.leader("prune-history")

    async def prune(context: ContextTypes.DEFAULT_TYPE) -> None:
        if pruning_lead is None or await pruning_lead.held():
            await prune_history(store, settings.history_days)

    # daily; serve() runs it once at start-up too
    app.job_queue.run_repeating(prune, interval=DAY_SECONDS, name=PRUNE_JOB)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log anything unexpected with its traceback; the bot keeps running."""
    if isinstance(context.error, NetworkError) and not isinstance(context.error, BadRequest):
        logger.warning("network error (will retry): %s", context.error)
        return
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("unhandled error in update %s", update_id, exc_info=context.error)


async def register_commands(app: App, engine: Engine) -> None:
    """Register the command menu in every language (the default language for everyone else)."""
    for lang, code in (
        (row.code, None if row.code == LANGUAGES.default else row.code) for row in LANGUAGES
    ):
        commands = [BotCommand(name, desc) for name, desc in engine.command_descriptions(lang)]

        async def register(c: list[BotCommand] = commands, lc: str | None = code) -> bool:
            done: bool = await app.bot.set_my_commands(c, language_code=lc)
            return done

        try:
            await with_retry(register)
        except TelegramError as exc:
            logger.warning("could not register the %s command menu: %s", lang, exc)


async def start(app: App) -> None:
    """Connect to the Bot API and check the token (raises StartupError, without the token)."""
    try:
        await app.initialize()
    except TelegramError as exc:
        await app.bot.shutdown()  # close the connections opened before getMe failed
        # PTB's own message for a refused token contains the token: never pass it on.
        if isinstance(exc, InvalidToken):
            raise StartupError(
                "the Bot API refused the token (getMe): check TELEGRAM_BOT_TOKEN, "
                "and TELEGRAM_API_BASE_URL if it is set"
            ) from None
        raise StartupError(
            f"cannot reach the Bot API at start-up ({type(exc).__name__}): "
            "check the network and TELEGRAM_API_BASE_URL"
        ) from None


async def serve(bot: TelegramBot, live: LiveEngine, stop: asyncio.Event) -> None:
    """Long-poll until stop is set, then finish the updates in flight and shut down."""
    app = bot.app
    await start(app)
    async with app:  # initialized already: this only shuts it down at the end
        await register_commands(app, live.engine)
        await app.start()
        if app.job_queue is not None:  # APScheduler cannot start a repeating job right away
            for job in app.job_queue.get_jobs_by_name(PRUNE_JOB):
                await job.run(app)  # the daily prune, once now at start-up
        try:  # a webhook and polling exclude each other, as PTB's Updater does
            await with_retry(lambda: app.bot.delete_webhook())
        except TelegramError as exc:  # getUpdates will say so if it matters (409)
            logger.warning("could not remove a webhook: %s", exc)
        await bot.outbox.resume()
        await recover(app.bot, bot.processor.store, bot.processor)
        logger.info("bot started, polling for updates")
        await Poller(app.bot, bot.processor.store, bot.processor).run(stop)
        logger.info("stopping")
        await bot.processor.join(STOP_TIMEOUT)
        await bot.outbox.close()
        await app.stop()


async def serve_webhook(
    bot: TelegramBot, live: LiveEngine, settings: Settings, stop: asyncio.Event
) -> None:
    """Serve POST /telegram and GET /healthz until stop is set, then drain and shut down."""
    app = bot.app
    store = bot.processor.store
    routes = WebhookRoutes(app.bot, store, bot.processor, live, settings.webhook.secret)
    runner = web.AppRunner(routes.application(), access_log=None, shutdown_timeout=STOP_TIMEOUT)
    await start(app)
    try:  # listening (503 until ready: Telegram tries again) and registered, or one line
        await runner.setup()
        await _listen(runner, settings)
        if settings.webhook.url is not None:
            try:
                await with_retry(lambda: set_webhook(app.bot, settings.webhook, ALLOWED_UPDATES))
            except TelegramError as exc:  # e.g. not https, or a port Telegram does not use
                raise StartupError(f"setWebhook refused TELEGRAM_WEBHOOK_URL: {exc}") from None
    except BaseException:
        await runner.cleanup()
        await app.shutdown()
        raise
    async with app:  # initialized already: this only shuts it down at the end
        await register_commands(app, live.engine)
        await app.start()
        if app.job_queue is not None:
            for job in app.job_queue.get_jobs_by_name(PRUNE_JOB):
                await job.run(app)
        await bot.outbox.resume()
        await recover(app.bot, store, bot.processor)
        routes.ready = True
        logger.info("bot started, serving webhooks on %s:%s", settings.webhook.host, _port(runner))
        sweeper = None
        if store.shared:
            sweeper = asyncio.create_task(
                sweep_forever(app.bot, store, bot.processor, bot.outbox, stop)
            )
        await stop.wait()
        logger.info("stopping")
        routes.ready = False  # new deliveries get 503: Telegram sends them to another instance
        await runner.cleanup()
        if sweeper is not None:
            await sweeper
        await bot.processor.join(STOP_TIMEOUT)
        await bot.outbox.close()
        await app.stop()


async def _listen(runner: web.AppRunner, settings: Settings) -> None:
    """Start listening on BOT_HOST:BOT_PORT (raises StartupError in one line)."""
    host, port = settings.webhook.host, settings.webhook.port
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _port(runner: web.AppRunner) -> object:
    addresses = runner.addresses
    return addresses[0][1] if addresses else "?"
