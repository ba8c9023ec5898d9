"""The framework's ceiling: a bare python-telegram-bot application, for bench_bot to compare with.

    TELEGRAM_BOT_TOKEN=… TELEGRAM_API_BASE_URL=… python -m benchmarks.bare_bot

Every text gets one reply with two buttons; every tap is answered and its message edited to a
text with two buttons: the same Bot API calls our bot makes for a pasted error and a tap, with
no knowledge base, matching, engine or storage. Concurrent updates on (PTB's default 256) and
PTB's default connection pool; long polling like `python -m bot run`. SIGTERM stops it.
BARE_CONCURRENT_UPDATES and BARE_CONNECTION_POOL_SIZE change those; BARE_TRANSPORT=aiohttp
makes the Bot API calls with our transport (bot/channels/telegram/transport.py) instead of
PTB's httpx.
"""

from __future__ import annotations

import asyncio
import os
import signal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

# About as long as our bot's messages (a recognised error with its summary, a fix's steps).
REPLY = (
    "<b>Step 1/12: Check Apple's system status</b>\n"
    + ("Open the system status page and look for iCloud, Apple ID and iCloud Drive. ") * 6
)
MARKUP = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("✅ Solved", callback_data="s:1"),
            InlineKeyboardButton("➡️ Next fix", callback_data="n:1"),
        ]
    ]
)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(REPLY, parse_mode=ParseMode.HTML, reply_markup=MARKUP)


async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text(
        REPLY.replace("1/12", "2/12"), parse_mode=ParseMode.HTML, reply_markup=MARKUP
    )


async def serve() -> None:
    builder = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
    )
    # Unset: PTB's defaults (256 concurrent updates, a pool of 256 connections).
    concurrency = os.environ.get("BARE_CONCURRENT_UPDATES")
    builder = builder.concurrent_updates(int(concurrency) if concurrency else True)
    pool = os.environ.get("BARE_CONNECTION_POOL_SIZE")
    if os.environ.get("BARE_TRANSPORT") == "aiohttp":  # our Bot API client instead of httpx
        from bot.channels.telegram.transport import AiohttpRequest

        builder = builder.request(AiohttpRequest(int(pool) if pool else 256))
        builder = builder.get_updates_request(AiohttpRequest(1))
    elif pool:
        builder = builder.connection_pool_size(int(pool))
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    app.add_handler(CallbackQueryHandler(on_tap))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(allowed_updates=["message", "callback_query"])
        await stop.wait()
        await app.updater.stop()
        await app.stop()


if __name__ == "__main__":
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    asyncio.run(serve())
