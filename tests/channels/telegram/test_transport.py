"""The aiohttp Bot API transport (bot/channels/telegram/transport.py), driven by a real
python-telegram-bot ``Bot`` against the fake Bot API and against servers that never answer."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlencode

import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels.telegram.transport import AiohttpRequest, TooLarge, form_encoded
from tests.support.fakebotapi import FakeBotApi

TOKEN = "123456:TEST-token"
USER = 1001
BOUND = 10.0  # seconds any single call below may take before the test fails instead of hanging


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (9, 4), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=TOKEN) as server:
        server.add_user(USER, first_name="Ann")
        yield server


@asynccontextmanager
async def ptb_bot(
    base_url: str, base_file_url: str = "", **request: float | None
) -> AsyncIterator[Bot]:
    """A Bot on two AiohttpRequests (calls and getUpdates), requests initialised, no getMe."""
    bot = Bot(
        TOKEN,
        base_url=base_url,
        base_file_url=base_file_url or base_url,
        request=AiohttpRequest(connection_pool_size=1, **request),  # type: ignore[arg-type]
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    )
    requests = bot._request  # Bot.initialize would call getMe, which a silent server never answers
    for request in requests:
        await request.initialize()
    try:
        yield bot
    finally:
        for request in requests:
            await request.shutdown()


@asynccontextmanager
async def silent_server(*, read: bool) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """An HTTP server on 127.0.0.1 that never answers; with read=False it never reads either."""
    done = asyncio.Event()
    connected = asyncio.Event()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        connected.set()
        try:
            if read:
                waiting = asyncio.ensure_future(done.wait())
                while not done.is_set():
                    reading = asyncio.ensure_future(reader.read(65536))
                    await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
                    if not reading.done():
                        reading.cancel()
                    elif not reading.result():
                        break
                waiting.cancel()
            else:
                await done.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/bot", connected
    finally:
        done.set()
        server.close()
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), BOUND)
        await server.wait_closed()


async def test_messages_buttons_and_long_polling(api: FakeBotApi) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("✅ 解決した", callback_data="s:1")]])
    async with ptb_bot(api.base_url, api.file_base_url) as bot:
        sent = await bot.send_message(
            USER, "<b>ステップ</b> 1 & 2", parse_mode="HTML", reply_markup=markup
        )
        assert sent.text == "ステップ 1 & 2"
        last = api.last_message(USER)
        assert last is not None and last.buttons == [
            {"text": "✅ 解決した", "callback_data": "s:1"}
        ]

        api.push_text(USER, "iCloudに接続できません")
        updates = await asyncio.wait_for(bot.get_updates(timeout=2), BOUND)
        assert [u.message.text for u in updates if u.message] == ["iCloudに接続できません"]
        assert (
            await asyncio.wait_for(
                bot.get_updates(offset=updates[-1].update_id + 1, timeout=1), BOUND
            )
            == ()
        )


async def test_photo_upload_and_file_download(api: FakeBotApi) -> None:
    png = _png()
    async with ptb_bot(api.base_url, api.file_base_url) as bot:
        sent = await bot.send_photo(USER, png, caption="<i>solve rates</i>", parse_mode="HTML")
        assert sent.caption == "solve rates"
        assert (sent.photo[-1].width, sent.photo[-1].height) == (9, 4)
        assert api.requests[-1].params["photo"].data == png
        document = await bot.send_document(USER, io.BytesIO(b"a,b\n1,2\n"), filename="t.csv")
        assert document.document is not None and document.document.file_name == "t.csv"

        file_id = api.add_file(png, file_name="screenshot.png")
        telegram_file = await bot.get_file(file_id)
        assert bytes(await telegram_file.download_as_bytearray()) == png


async def test_bot_api_errors_keep_their_meaning(api: FakeBotApi) -> None:
    async with ptb_bot(api.base_url) as bot:
        api.fail_next("sendMessage", retry_after=3)
        with pytest.raises(RetryAfter):
            await bot.send_message(USER, "hi")
        api.fail_next(
            "sendMessage", status=403, description="Forbidden: bot was blocked by the user"
        )
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(USER, "hi")
        with pytest.raises(BadRequest):
            await bot.send_message(USER, "")


async def test_a_call_with_written_parameters_is_the_same_request(api: FakeBotApi) -> None:
    async with ptb_bot(api.base_url) as bot:
        request = bot.request
        assert isinstance(request, AiohttpRequest)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("✅ 解決した", callback_data="s:1")]])
        fields = {"chat_id": str(USER), "text": "<b>ステップ</b> 1 & 2", "parse_mode": "HTML"}
        sent = await request.call(
            f"{bot.base_url}/sendMessage", fields | {"reply_markup": markup.to_json()}
        )
        assert sent["text"] == "ステップ 1 & 2" and isinstance(sent["message_id"], int)
        by_ptb = await bot.send_message(
            USER, fields["text"], parse_mode="HTML", reply_markup=markup
        )
        first, second = api.requests[-2:]
        assert first.params == second.params  # what PTB sends, parameter for parameter

        api.fail_next("sendMessage", retry_after=3)  # PTB's errors, as from Bot's methods
        with pytest.raises(RetryAfter):
            await request.call(f"{bot.base_url}/sendMessage", fields)
        api.fail_next(
            "sendMessage", status=403, description="Forbidden: bot was blocked by the user"
        )
        with pytest.raises(Forbidden, match="blocked"):
            await request.call(f"{bot.base_url}/sendMessage", fields)
        with pytest.raises(BadRequest):
            await request.call(f"{bot.base_url}/sendMessage", fields | {"text": ""})
        # Concurrent calls each send their own parameters.
        texts = [f"message {n}" for n in range(10)]
        await asyncio.gather(
            *(request.call(f"{bot.base_url}/sendMessage", fields | {"text": t}) for t in texts)
        )
        assert sorted(m.text for m in api.chat(USER)[-10:]) == sorted(texts)
        assert by_ptb.message_id == sent["message_id"] + 1


def test_form_encoding_is_what_urlencode_writes() -> None:
    fields = {"chat_id": "-100123", "text": "a b&c=d+e%f/g ✅ 解決 é\n~_.-", "x y": '{"k": [1]}'}
    assert form_encoded(fields) == urlencode(fields).encode()
    assert form_encoded({}) == b""


async def test_refused_connection_is_a_network_error_without_the_token() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ptb_bot(f"http://127.0.0.1:{port}/bot") as bot:
        with pytest.raises(NetworkError) as caught:
            await asyncio.wait_for(bot.send_message(USER, "hi"), BOUND)
    assert not isinstance(caught.value, TimedOut)
    assert "aiohttp.Client" in caught.value.message and TOKEN not in caught.value.message


async def test_silent_server_times_out_with_the_default_read_timeout() -> None:
    async with silent_server(read=True) as (url, _), ptb_bot(url, read_timeout=0.2) as bot:
        assert bot.request.read_timeout == 0.2
        with pytest.raises(TimedOut):
            await asyncio.wait_for(bot.send_message(USER, "hi"), BOUND)
        with pytest.raises(TimedOut):  # a read_timeout given to the call wins
            await asyncio.wait_for(bot.send_message(USER, "hi", read_timeout=0.1), BOUND)


async def test_an_upload_nobody_reads_times_out() -> None:
    # aiohttp has no socket-write timeout: the deadline up to the response's headers bounds it.
    big = io.BytesIO(b"\0" * (64 << 20))  # more than the socket buffers hold
    async with silent_server(read=False) as (url, _), ptb_bot(url) as bot:
        with pytest.raises(TimedOut):
            await asyncio.wait_for(
                bot.send_document(
                    USER, big, write_timeout=0.3, read_timeout=0.2, connect_timeout=0.2
                ),
                BOUND,
            )


async def test_pool_timeout_when_every_connection_is_busy() -> None:
    async with silent_server(read=True) as (url, connected), ptb_bot(url) as bot:
        busy = asyncio.ensure_future(bot.send_message(USER, "first", read_timeout=BOUND))
        await asyncio.wait_for(connected.wait(), BOUND)
        with pytest.raises(TimedOut, match="Pool timeout"):
            await asyncio.wait_for(bot.send_message(USER, "second", pool_timeout=0.1), BOUND)
        busy.cancel()
        with suppress(asyncio.CancelledError):
            await busy


async def test_initialize_shutdown_and_initialize_again(api: FakeBotApi) -> None:
    request = AiohttpRequest(connection_pool_size=2)
    bot = Bot(TOKEN, base_url=api.base_url, request=request)
    with pytest.raises(NetworkError, match="not initialized"):
        await bot.send_message(USER, "too early")
    async with bot:
        assert (await bot.get_me()).is_bot
    await request.shutdown()  # a second shutdown is harmless
    async with bot:
        assert (await bot.send_message(USER, "back")).text == "back"
    with pytest.raises(ValueError, match="connection_pool_size"):
        AiohttpRequest(connection_pool_size=0)


async def test_download_stops_at_the_limit(api: FakeBotApi) -> None:
    data = bytes(range(256)) * 4096  # 1 MB
    sized = api.add_file(data, file_name="sized.bin")
    unsized = api.add_file(data, file_name="unsized.bin", hide_size=True)
    async with ptb_bot(api.base_url, api.file_base_url) as bot, asyncio.timeout(BOUND):
        request = bot.request
        assert isinstance(request, AiohttpRequest)
        for file_id in (sized, unsized):
            url = (await bot.get_file(file_id)).file_path
            assert url is not None
            assert await request.download(url, len(data)) == data
            with pytest.raises(TooLarge):  # by Content-Length, or by counting
                await request.download(url, 100_000)
        # Unsized: given up just past the limit (the fake paces its writes), connection closed.
        assert api.served_bytes(unsized) < len(data) + 300_000
        with pytest.raises(NetworkError, match="HTTP 404"):
            await request.download(f"{api.file_base_url}{TOKEN}/nothing/here", 10)
