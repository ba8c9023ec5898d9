"""The fastest bare framework we know: an aiogram 3 echo, for bench_bot to compare with.

    TELEGRAM_BOT_TOKEN=… TELEGRAM_API_BASE_URL=…/bot python -m benchmarks.bare_aiogram

The least a support bot does, with the Bot API calls ours makes: every text gets one reply with
a button row; every tap is answered and its message edited (benchmarks/bare_bot.py does the
same on python-telegram-bot). No knowledge base, matching, engine or storage. aiogram's own
defaults: long polling, each update handled as its own task, its aiohttp session. SIGTERM
stops it. aiogram is MIT-licensed and only in the dev extra.
"""

from __future__ import annotations

import asyncio
import os
import signal

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from benchmarks.bare_bot import REPLY

MARKUP = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="✅ Solved", callback_data="s:1"),
            InlineKeyboardButton(text="➡️ Next fix", callback_data="n:1"),
        ]
    ]
)


async def on_text(message: Message) -> None:
    await message.answer(REPLY, parse_mode=ParseMode.HTML, reply_markup=MARKUP)


async def on_tap(query: CallbackQuery) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(
            REPLY.replace("1/12", "2/12"), parse_mode=ParseMode.HTML, reply_markup=MARKUP
        )


async def serve() -> None:
    base = os.environ.get("TELEGRAM_API_BASE_URL", "https://api.telegram.org/bot")
    # aiogram wants the server's root; it adds /bot<token>/<method> itself.
    server = TelegramAPIServer.from_base(base.removesuffix("/bot"))
    bot = Bot(os.environ["TELEGRAM_BOT_TOKEN"], session=AiohttpSession(api=server))
    dispatcher = Dispatcher()
    dispatcher.message.register(on_text, F.text)
    dispatcher.callback_query.register(on_tap)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot,
            allowed_updates=["message", "callback_query"],
            handle_signals=False,
            close_bot_session=True,
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await dispatcher.stop_polling()
    await polling


if __name__ == "__main__":
    asyncio.run(serve())
