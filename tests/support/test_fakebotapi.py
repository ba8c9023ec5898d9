"""Tests of the fake Bot API server, driven by a real python-telegram-bot ``Bot``
(and Application) and by raw aiohttp/httpx requests."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.support.fakebotapi import FakeBotApi, parse_html, utf16_len

TOKEN = "123456:TEST-token"
USER = 1001


def _png(width: int, height: int) -> bytes:
    """A minimal valid PNG of the given size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def ptb_message(description: str) -> str:
    """The message python-telegram-bot's BadRequest carries for a Telegram description."""
    stripped = description.removeprefix("Bad Request: ")
    return stripped.capitalize() if stripped != description else stripped


def keyboard(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([list(buttons)])


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=TOKEN) as server:
        server.add_user(USER, first_name="Ann")
        yield server


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.file_base_url) as client:
        yield client


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def raw_call(
    session: aiohttp.ClientSession,
    api: FakeBotApi,
    method: str,
    *,
    json_body: dict[str, Any] | None = None,
    form: dict[str, str] | aiohttp.FormData | None = None,
    query: dict[str, str] | None = None,
    token: str = TOKEN,
) -> tuple[int, dict[str, Any]]:
    """One raw HTTP request; GET when only a query is given."""
    url = f"{api.url}/bot{token}/{method}"
    if json_body is None and form is None:
        response = await session.get(url, params=query)
    else:
        response = await session.post(url, json=json_body, data=form, params=query)
    async with response:
        return response.status, await response.json()


async def expect_bad_request(api: FakeBotApi, call: Awaitable[Any], description: str) -> None:
    """``call`` fails with BadRequest, and the server sent exactly ``description``."""
    with pytest.raises(BadRequest) as caught:
        await call
    assert api.errors[-1].description == description
    assert api.errors[-1].status == 400
    assert caught.value.message == ptb_message(description)


# -- server basics -------------------------------------------------------------------------


async def test_urls_and_get_me(api: FakeBotApi, bot: Bot) -> None:
    assert api.base_url == f"http://127.0.0.1:{api.port}/bot"
    assert api.file_base_url == f"http://127.0.0.1:{api.port}/file/bot"
    assert api.port > 0
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "fake_support_bot")
    assert api.requests[0].method == "getMe"


async def test_tokens_and_unknown_methods(api: FakeBotApi, session: aiohttp.ClientSession) -> None:
    status, body = await raw_call(session, api, "getMe", token="123456:WRONG")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await raw_call(session, api, "getMe", token="not-a-token")
    assert (status, body["description"]) == (404, "Not Found")
    status, body = await raw_call(session, api, "sendTelepathy", json_body={})
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    status, body = await raw_call(session, api, "GETME")
    assert status == 200 and body["result"]["id"] == 123456
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with Bot("123456:WRONG", base_url=api.base_url):
            pass


async def test_json_form_and_query_bodies_are_equivalent(
    api: FakeBotApi, session: aiohttp.ClientSession
) -> None:
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    status, by_json = await raw_call(
        session,
        api,
        "sendMessage",
        json_body={"chat_id": USER, "text": "x", "reply_markup": markup},
    )
    assert status == 200
    status, by_form = await raw_call(
        session,
        api,
        "sendmessage",
        form={"chat_id": str(USER), "text": "x", "reply_markup": json.dumps(markup)},
    )
    assert status == 200
    status, by_query = await raw_call(
        session,
        api,
        "SendMessage",
        query={"chat_id": str(USER), "text": "x", "reply_markup": json.dumps(markup)},
    )
    assert status == 200
    for body in (by_json, by_form, by_query):
        assert body["ok"] is True
        assert body["result"]["reply_markup"] == markup
        assert body["result"]["chat"] == {"id": USER, "first_name": "Ann", "type": "private"}
    ids = [b["result"]["message_id"] for b in (by_json, by_form, by_query)]
    assert ids == [1, 2, 3]
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{api.base_url}{TOKEN}/sendMessage", json={"chat_id": USER, "text": "via httpx"}
        )
    assert response.status_code == 200 and response.json()["result"]["text"] == "via httpx"
    assert [r.params["chat_id"] for r in api.calls("sendMessage")] == [USER] * 4


# -- sending and editing -------------------------------------------------------------------


async def test_send_and_edit_flow(api: FakeBotApi, bot: Bot) -> None:
    api.push_text(USER, "hi")  # message 1 is the user's: ids are per chat, shared
    sent = await bot.send_message(
        USER,
        "<b>Choose</b>",
        parse_mode="HTML",
        reply_markup=keyboard(InlineKeyboardButton("Yes", callback_data="yes")),
    )
    assert sent.message_id == 2
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.text == "Choose"
    assert sent.entities[0].type == "bold"
    assert sent.reply_markup is not None

    edited = await bot.edit_message_text(
        "Chosen",
        chat_id=USER,
        message_id=sent.message_id,
        reply_markup=keyboard(InlineKeyboardButton("Undo", callback_data="undo")),
    )
    assert isinstance(edited, type(sent)) and edited.edit_date is not None
    await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id)

    message = api.last_message(USER)
    assert message is not None
    assert (message.text, message.entities, message.reply_markup) == ("Chosen", [], None)
    assert message.edited
    assert [version["text"] for version in message.history] == ["Choose", "Chosen"]
    assert message.history[0]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Yes"

    await bot.edit_message_text("Plain again", chat_id=USER, message_id=sent.message_id)
    assert api.push_text(USER, "next")["message"]["message_id"] == 3


async def test_edit_without_markup_removes_the_keyboard(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(
        USER, "Pick", reply_markup=keyboard(InlineKeyboardButton("A", callback_data="a"))
    )
    await bot.edit_message_text("Pick!", chat_id=USER, message_id=sent.message_id)
    message = api.last_message(USER)
    assert message is not None and message.reply_markup is None


async def test_edit_errors(api: FakeBotApi, bot: Bot) -> None:
    markup = keyboard(InlineKeyboardButton("A", callback_data="a"))
    sent = await bot.send_message(USER, "Same", reply_markup=markup)
    await expect_bad_request(
        api,
        bot.edit_message_text("x", chat_id=USER, message_id=999),
        "Bad Request: message to edit not found",
    )
    not_modified = (
        "Bad Request: message is not modified: specified new message content and reply "
        "markup are exactly the same as a current content and reply markup of the message"
    )
    await expect_bad_request(
        api,
        bot.edit_message_text(
            "Same", chat_id=USER, message_id=sent.message_id, reply_markup=markup
        ),
        not_modified,
    )
    await expect_bad_request(
        api,
        bot.edit_message_reply_markup(
            chat_id=USER, message_id=sent.message_id, reply_markup=markup
        ),
        not_modified,
    )
    user_message_id = api.push_text(USER, "mine")["message"]["message_id"]
    await expect_bad_request(
        api,
        bot.edit_message_text("x", chat_id=USER, message_id=user_message_id),
        "Bad Request: message can't be edited",
    )
    assert not api.chat(USER)[0].edited  # failed edits change nothing


async def test_delete_message(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(USER, "bye")
    assert await bot.delete_message(USER, sent.message_id)
    assert api.chat(USER) == []
    assert api.chat(USER, include_deleted=True)[0].deleted
    await expect_bad_request(
        api, bot.delete_message(USER, sent.message_id), "Bad Request: message to delete not found"
    )


async def test_text_empty_and_length_limits(api: FakeBotApi, bot: Bot) -> None:
    await expect_bad_request(api, bot.send_message(USER, ""), "Bad Request: message text is empty")
    await expect_bad_request(
        api, bot.send_message(USER, "  \n "), "Bad Request: text must be non-empty"
    )
    await bot.send_message(USER, "x" * 4096)
    await expect_bad_request(
        api, bot.send_message(USER, "x" * 4097), "Bad Request: message is too long"
    )
    # Telegram counts UTF-16 code units: an emoji outside the BMP counts twice.
    await bot.send_message(USER, "😀" * 2048)
    await expect_bad_request(
        api, bot.send_message(USER, "😀" * 2048 + "x"), "Bad Request: message is too long"
    )
    # The limit applies after entity parsing.
    await bot.send_message(USER, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    await bot.send_message(USER, "&lt;" * 4096, parse_mode="HTML")
    await expect_bad_request(
        api,
        bot.send_message(USER, "<b>" + "y" * 4097 + "</b>", parse_mode="HTML"),
        "Bad Request: message is too long",
    )
    # Surrounding whitespace is trimmed before counting, as Telegram does.
    await bot.send_message(USER, "\n" + "z" * 4096 + "  ")
    assert utf16_len("😀") == 2


async def test_unsupported_parse_mode(api: FakeBotApi, bot: Bot) -> None:
    await expect_bad_request(
        api, bot.send_message(USER, "x", parse_mode="Fancy"), "Bad Request: unsupported parse_mode"
    )


async def test_explicit_entities_are_validated(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(USER, "hello", entities=[MessageEntity("bold", 0, 5)])
    assert sent.entities[0].type == "bold"
    await expect_bad_request(
        api,
        bot.send_message(USER, "hello", entities=[MessageEntity("bold", 0, 100)]),
        "Bad Request: entity beginning at UTF-16 offset 0 ends after the end of the text "
        "at UTF-16 offset 100",
    )


# -- HTML ----------------------------------------------------------------------------------

HTML_ACCEPTED: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "<b>bold</b> <i>it</i>",
        "bold it",
        [
            {"offset": 0, "length": 4, "type": "bold"},
            {"offset": 5, "length": 2, "type": "italic"},
        ],
    ),
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>", []),
    ("&#128512;&#x41;&amp;&quot;&lt", '😀A&"<', []),
    ("AT&T &nbsp; &copy;", "AT&T &nbsp; &copy;", []),
    (
        '<a href="https://example.com">site</a>',
        "site",
        [{"offset": 0, "length": 4, "type": "text_link", "url": "https://example.com/"}],
    ),
    (
        '<pre><code class="language-python">x = 1</code></pre>',
        "x = 1",
        [{"offset": 0, "length": 5, "type": "pre", "language": "python"}],
    ),
    (
        '<tg-spoiler>a</tg-spoiler><span class="tg-spoiler">b</span>',
        "ab",
        [
            {"offset": 0, "length": 1, "type": "spoiler"},
            {"offset": 1, "length": 1, "type": "spoiler"},
        ],
    ),
    (
        "<blockquote expandable>q</blockquote>",
        "q",
        [{"offset": 0, "length": 1, "type": "expandable_blockquote"}],
    ),
    ("<B>up</B>", "up", [{"offset": 0, "length": 2, "type": "bold"}]),
    ("😀<u>x</u>", "😀x", [{"offset": 2, "length": 1, "type": "underline"}]),
    (" <b> padded </b> ", "padded", [{"offset": 0, "length": 6, "type": "bold"}]),
    ("<b></b>x<s>z</>", "xz", [{"offset": 1, "length": 1, "type": "strikethrough"}]),
    (
        "<b>a<i>b</i></b>",
        "ab",
        [{"offset": 0, "length": 2, "type": "bold"}, {"offset": 1, "length": 1, "type": "italic"}],
    ),
]


@pytest.mark.parametrize(("html", "text", "entities"), HTML_ACCEPTED)
async def test_html_accepted(
    api: FakeBotApi, bot: Bot, html: str, text: str, entities: list[dict[str, Any]]
) -> None:
    sent = await bot.send_message(USER, html, parse_mode="HTML")
    assert sent.text == text
    stored = api.last_message(USER)
    assert stored is not None and (stored.text, stored.entities) == (text, entities)


HTML_REJECTED: list[tuple[str, str]] = [
    ("<script>alert(1)</script>", 'Unsupported start tag "script" at byte offset 0'),
    ("Hello, <foo>world</foo>", 'Unsupported start tag "foo" at byte offset 7'),
    ("é<foo>", 'Unsupported start tag "foo" at byte offset 2'),
    ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b><i>test</b></i>", 'Unmatched end tag at byte offset 10, expected "</i>", found "</b>"'),
    ("text</b>", "Unexpected end tag at byte offset 4"),
    ("<b", "Unclosed start tag at byte offset 0"),
    ('<span class="x">a</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ("<a href=x", "Unexpected end of name token at byte offset 8"),
    ("<b>x</b", "Unclosed end tag at byte offset 4"),
    (
        "<i nope>x</i>",
        'Expected equal sign in declaration of an attribute of the tag "i" at byte offset 0',
    ),
]


@pytest.mark.parametrize(("html", "reason"), HTML_REJECTED)
async def test_html_rejected(api: FakeBotApi, bot: Bot, html: str, reason: str) -> None:
    await expect_bad_request(
        api,
        bot.send_message(USER, html, parse_mode="HTML"),
        f"Bad Request: can't parse entities: {reason}",
    )
    assert api.chat(USER) == []


async def test_bare_ampersand_can_be_made_strict() -> None:
    assert parse_html("a & b") == ("a & b", [])
    async with FakeBotApi(reject_bare_ampersand=True) as strict:
        strict.add_user(USER)
        async with Bot(TOKEN, base_url=strict.base_url) as client:
            with pytest.raises(BadRequest, match="byte offset 2"):
                await client.send_message(USER, "a & b", parse_mode="HTML")
            await client.send_message(USER, "a &amp; b", parse_mode="HTML")


# -- inline keyboards ----------------------------------------------------------------------


@pytest.mark.parametrize("data", ["x" * 64, "é" * 32, "€" * 21, "1"])
async def test_callback_data_within_64_bytes(api: FakeBotApi, bot: Bot, data: str) -> None:
    sent = await bot.send_message(
        USER, "k", reply_markup=keyboard(InlineKeyboardButton("b", callback_data=data))
    )
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == data


@pytest.mark.parametrize("data", ["x" * 65, "é" * 33, "€" * 22])
async def test_callback_data_over_64_bytes(api: FakeBotApi, bot: Bot, data: str) -> None:
    await expect_bad_request(
        api,
        bot.send_message(
            USER, "k", reply_markup=keyboard(InlineKeyboardButton("b", callback_data=data))
        ),
        "Bad Request: BUTTON_DATA_INVALID",
    )


async def test_url_buttons(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(
        USER, "k", reply_markup=keyboard(InlineKeyboardButton("site", url="https://apple.com"))
    )
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].url == "https://apple.com/"
    for url, reason in (
        ("ftp://example.com", "Unsupported URL protocol"),
        ("not-a-url", "Wrong HTTP URL"),
        ("javascript:alert(1)", "Wrong HTTP URL"),
    ):
        await expect_bad_request(
            api,
            bot.send_message(
                USER, "k", reply_markup=keyboard(InlineKeyboardButton("site", url=url))
            ),
            f"Bad Request: inline keyboard button URL '{url}' is invalid: {reason}",
        )


async def test_malformed_buttons(api: FakeBotApi, session: aiohttp.ClientSession) -> None:
    prefix = "Bad Request: can't parse inline keyboard button: "
    cases: list[tuple[Any, str]] = [
        ({"text": "t"}, prefix + "Text buttons are unallowed in the inline keyboard"),
        (
            {"text": "t", "callback_data": ""},
            prefix + "Text buttons are unallowed in the inline keyboard",
        ),
        ({"callback_data": "x"}, prefix + 'Can\'t find field "text"'),
        ({"text": 5, "callback_data": "x"}, prefix + 'Field "text" must be of type String'),
        ({"text": "", "callback_data": "x"}, "Bad Request: BUTTON_TEXT_INVALID"),
        (
            {"text": "t", "callback_data": "x", "url": "https://a.com"},
            prefix + "exactly one of the optional fields must be used, got url, callback_data",
        ),
        ("button", prefix + "InlineKeyboardButton must be an Object"),
    ]
    for button, description in cases:
        status, body = await raw_call(
            session,
            api,
            "sendMessage",
            json_body={
                "chat_id": USER,
                "text": "t",
                "reply_markup": {"inline_keyboard": [[button]]},
            },
        )
        assert (status, body["description"]) == (400, description), button
    status, body = await raw_call(
        session,
        api,
        "sendMessage",
        form={"chat_id": str(USER), "text": "t", "reply_markup": "{not json"},
    )
    assert body["description"] == "Bad Request: can't parse reply keyboard markup JSON object"


# -- callback queries ----------------------------------------------------------------------


async def test_callback_query_answers(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(
        USER, "k", reply_markup=keyboard(InlineKeyboardButton("Go", callback_data="go"))
    )
    update = api.push_button(USER, "Go")
    query = update["callback_query"]
    assert query["data"] == "go"
    assert query["message"]["message_id"] == sent.message_id
    assert query["message"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Go"
    parsed = Update.de_json(update, bot)
    assert parsed is not None and parsed.callback_query is not None
    assert parsed.callback_query.message is not None

    await expect_bad_request(
        api,
        bot.answer_callback_query(query["id"], text="x" * 201),
        "Bad Request: MESSAGE_TOO_LONG",
    )
    assert await bot.answer_callback_query(query["id"], text="Done")
    answer = api.callback_answers[-1]
    assert (answer.callback_query_id, answer.data, answer.text) == (query["id"], "go", "Done")
    assert answer.latency >= 0
    too_old = "Bad Request: query is too old and response timeout expired or query ID is invalid"
    await expect_bad_request(api, bot.answer_callback_query(query["id"]), too_old)
    await expect_bad_request(api, bot.answer_callback_query("12345"), too_old)
    forged = api.push_tap(USER, sent.message_id, "forged-data")
    assert forged["callback_query"]["data"] == "forged-data"
    assert api.unanswered_callback_queries == [forged["callback_query"]["id"]]
    with pytest.raises(ValueError, match="no bot message"):
        api.push_tap(USER, 999, "x")


async def test_callback_query_expires() -> None:
    async with FakeBotApi(callback_query_timeout=0.05) as server:
        server.add_user(USER)
        async with Bot(TOKEN, base_url=server.base_url) as client:
            sent = await client.send_message(
                USER, "k", reply_markup=keyboard(InlineKeyboardButton("Go", callback_data="go"))
            )
            query_id = server.push_tap(USER, sent.message_id, "go")["callback_query"]["id"]
            await asyncio.sleep(0.1)
            with pytest.raises(BadRequest, match="Query is too old"):
                await client.answer_callback_query(query_id)


# -- chats, blocking, injected failures ----------------------------------------------------


async def test_unknown_and_blocked_chats(api: FakeBotApi, bot: Bot) -> None:
    await expect_bad_request(api, bot.send_message(777, "hi"), "Bad Request: chat not found")
    await expect_bad_request(api, bot.send_message("@nobody", "hi"), "Bad Request: chat not found")
    api.block(USER)
    with pytest.raises(Forbidden) as caught:
        await bot.send_message(USER, "hi")
    assert caught.value.message == "Forbidden: bot was blocked by the user"
    assert api.errors[-1].status == 403
    with pytest.raises(Forbidden):
        await bot.send_chat_action(USER, "typing")
    api.unblock(USER)
    await bot.send_message(USER, "hi again")
    assert [m.text for m in api.chat(USER)] == ["hi again"]


async def test_fail_next_injects_rate_limits_and_errors(
    api: FakeBotApi, bot: Bot, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, PTB 22 warns while building RetryAfter; under
    # filterwarnings=error that warning replaces the RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    api.fail_next("sendMessage", n=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "hi")
        assert caught.value.retry_after == dt.timedelta(seconds=3)
    await bot.send_message(USER, "hi")
    assert [r.status for r in api.calls("sendMessage")] == [429, 429, 200]
    assert [m.text for m in api.chat(USER)] == ["hi"]  # failed calls had no effect

    api.fail_next("sendmessage", retry_after=1)
    status, body = await raw_call(
        session, api, "sendMessage", json_body={"chat_id": USER, "text": "x"}
    )
    assert (status, body) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    api.fail_next("editMessageText", status=400, description="Bad Request: custom failure")
    with pytest.raises(BadRequest, match="Custom failure"):
        await bot.edit_message_text("x", chat_id=USER, message_id=1)
    api.fail_next("*", status=403, description="Forbidden: user is deactivated")
    with pytest.raises(Forbidden, match="deactivated"):
        await bot.get_me()


# -- getUpdates ----------------------------------------------------------------------------


async def test_get_updates_returns_queued_updates_and_respects_offset(
    api: FakeBotApi, bot: Bot
) -> None:
    first = api.push_text(USER, "/start now")
    second = api.push_text(USER, "hello")
    updates = await bot.get_updates(timeout=5)
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    assert updates[0].message is not None and updates[0].message.text == "/start now"
    assert updates[0].message.entities[0].type == "bot_command"
    assert updates[0].message.entities[0].length == 6
    assert updates[0].message.from_user is not None
    assert updates[0].message.from_user.language_code == "en"
    again = await bot.get_updates(offset=first["update_id"] + 1, timeout=0)
    assert [u.update_id for u in again] == [second["update_id"]]
    assert api.pending_updates == 1
    limited = await bot.get_updates(offset=0, limit=1, timeout=0)
    assert [u.update_id for u in limited] == [second["update_id"]]
    assert await bot.get_updates(offset=second["update_id"] + 1, timeout=0) == ()
    assert api.pending_updates == 0


async def test_get_updates_long_poll_wakes_on_push(
    api: FakeBotApi, session: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(raw_call(session, api, "getUpdates", query={"timeout": "5"}))
    await api.wait_for(lambda: api.polling, timeout=2)
    api.push_text(USER, "wake up")
    status, body = await poll
    assert status == 200 and body["result"][0]["message"]["text"] == "wake up"
    assert loop.time() - started < 2

    started = loop.time()
    status, body = await raw_call(
        session, api, "getUpdates", query={"offset": "2", "timeout": "0.3"}
    )
    elapsed = loop.time() - started
    assert (status, body) == (200, {"ok": True, "result": []})
    assert 0.25 < elapsed < 2


async def test_concurrent_get_updates_conflict(
    api: FakeBotApi, session: aiohttp.ClientSession, bot: Bot
) -> None:
    older = asyncio.create_task(raw_call(session, api, "getUpdates", query={"timeout": "5"}))
    await api.wait_for(lambda: api.polling, timeout=2)
    newer = asyncio.create_task(raw_call(session, api, "getUpdates", query={"timeout": "5"}))
    status, body = await older
    assert status == 409
    assert body["description"] == (
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running"
    )
    api.push_text(USER, "for the newer one")
    status, body = await newer
    assert status == 200 and len(body["result"]) == 1
    api.fail_next("getUpdates", status=409, description="Conflict: injected")
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)


async def test_push_message_kinds_parse_in_ptb(api: FakeBotApi, bot: Bot) -> None:
    photo_id = api.add_file(_png(4, 3))
    doc_id = api.add_file(b"%PDF-1.4 fake", file_name="report.pdf")
    api.push_message(
        USER,
        photo=[api.file_object(photo_id, width=4, height=3)],
        caption="screenshot",
    )
    api.push_message(
        USER,
        document=api.file_object(doc_id, file_name="report.pdf", mime_type="application/pdf"),
    )
    api.push_message(
        USER,
        sticker={
            "file_id": "STICKER1",
            "file_unique_id": "S1",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            "emoji": "👍",
        },
    )
    api.push_message(USER, voice={"file_id": "VOICE1", "file_unique_id": "V1", "duration": 2})
    updates = await bot.get_updates(timeout=0)
    messages = [u.message for u in updates]
    assert all(m is not None for m in messages)
    photo, document, sticker, voice = (m for m in messages if m is not None)
    assert photo.photo[-1].file_id == photo_id and photo.caption == "screenshot"
    assert document.document is not None and document.document.file_name == "report.pdf"
    assert sticker.sticker is not None and sticker.sticker.emoji == "👍"
    assert voice.voice is not None and voice.voice.file_id == "VOICE1"
    assert [m.message_id for m in messages if m is not None] == [1, 2, 3, 4]


# -- files ---------------------------------------------------------------------------------


async def test_get_file_and_download(api: FakeBotApi, bot: Bot) -> None:
    data = b"user's log file\n" * 10
    file_id = api.add_file(data, file_name="log.txt")
    telegram_file = await bot.get_file(file_id)
    assert telegram_file.file_size == len(data)
    assert telegram_file.file_path is not None
    assert telegram_file.file_path.startswith(api.file_base_url)
    assert bytes(await telegram_file.download_as_bytearray()) == data
    await expect_bad_request(api, bot.get_file("nope"), "Bad Request: invalid file_id")


async def test_a_file_without_a_size_is_streamed_and_counted(api: FakeBotApi, bot: Bot) -> None:
    data = bytes(range(256)) * 1024  # 256 KB: several chunks
    file_id = api.add_file(data, file_name="big.bin", hide_size=True)
    assert "file_size" not in api.file_object(file_id)
    telegram_file = await bot.get_file(file_id)
    assert telegram_file.file_size is None
    assert api.served_bytes(file_id) == 0
    assert bytes(await telegram_file.download_as_bytearray()) == data
    assert api.served_bytes(file_id) == len(data)


async def test_send_photo_and_document_uploads(api: FakeBotApi, bot: Bot) -> None:
    png = _png(7, 5)
    sent = await bot.send_photo(USER, png, caption="<i>look</i>", parse_mode="HTML")
    assert sent.caption == "look" and sent.caption_entities[0].type == "italic"
    assert (sent.photo[-1].width, sent.photo[-1].height) == (7, 5)
    assert api.requests[-1].params["photo"].data == png
    downloaded = await (await bot.get_file(sent.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == png
    again = await bot.send_photo(USER, sent.photo[-1].file_id)  # resend by file_id
    assert again.photo[-1].file_id == sent.photo[-1].file_id

    document = await bot.send_document(USER, b"a,b\n1,2\n", filename="table.csv")
    assert document.document is not None and document.document.file_name == "table.csv"
    assert api.file_bytes(document.document.file_id) == b"a,b\n1,2\n"
    kinds = [m.kind for m in api.chat(USER)]
    assert kinds == ["photo", "photo", "document"]

    await expect_bad_request(
        api, bot.send_photo(USER, b"not an image"), "Bad Request: IMAGE_PROCESS_FAILED"
    )
    await expect_bad_request(
        api,
        bot.send_document(USER, "unknown-file-id"),
        "Bad Request: wrong file identifier/HTTP URL specified",
    )
    await expect_bad_request(
        api,
        bot.send_photo(USER, png, caption="c" * 1025),
        "Bad Request: message caption is too long",
    )


async def test_raw_multipart_upload(api: FakeBotApi, session: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("document", b"raw bytes", filename="raw.bin")
    status, body = await raw_call(session, api, "sendDocument", form=form)
    assert status == 200
    assert body["result"]["document"]["file_name"] == "raw.bin"
    async with session.get(f"{api.file_base_url}WRONG/documents/x") as response:
        assert response.status == 404
    async with session.get(f"{api.file_base_url}{TOKEN}/documents/none.bin") as response:
        assert response.status == 404


# -- commands and chat actions -------------------------------------------------------------


async def test_commands(api: FakeBotApi, bot: Bot) -> None:
    assert await bot.set_my_commands([("start", "Start over"), ("help", "Get help")])
    assert await bot.set_my_commands([("start", "Neu anfangen")], language_code="de")
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.description for c in await bot.get_my_commands(language_code="de")] == [
        "Neu anfangen"
    ]
    assert api.commands(language_code="de") == [{"command": "start", "description": "Neu anfangen"}]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    await expect_bad_request(
        api, bot.set_my_commands([("Start-Now", "x")]), "Bad Request: BOT_COMMAND_INVALID"
    )
    await expect_bad_request(
        api, bot.set_my_commands([("ok", "")]), "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"
    )


async def test_chat_action(api: FakeBotApi, bot: Bot) -> None:
    assert await bot.send_chat_action(USER, "typing")
    await expect_bad_request(
        api, bot.send_chat_action(USER, "dancing"), "Bad Request: wrong parameter action in request"
    )


# -- waiting -------------------------------------------------------------------------------


async def test_wait_helpers(api: FakeBotApi, bot: Bot) -> None:
    async def reply_later() -> None:
        await asyncio.sleep(0.05)
        await bot.send_message(USER, "one")
        await bot.send_message(USER, "two")

    task = asyncio.create_task(reply_later())
    messages = await api.wait_for_messages(USER, 2, timeout=5)
    assert [m.text for m in messages] == ["one", "two"]
    await task
    calls = await api.wait_for_calls("sendMessage", 2, timeout=1)
    assert len(calls) == 2
    assert await api.wait_for(lambda: api.last_message(USER), timeout=1) is messages[-1]
    await api.wait_idle(timeout=2, quiet=0.05)

    with pytest.raises(AssertionError, match=r"3 bot message\(s\) to user 1001") as caught:
        await api.wait_for_messages(USER, 3, timeout=0.05)
    assert "'two'" in str(caught.value) and "sendMessage->200" in str(caught.value)
    api.push_text(USER, "nobody polls")
    with pytest.raises(AssertionError, match="undelivered updates: 1"):
        await api.wait_idle(timeout=0.05)


async def test_push_updates_are_awaitable_dicts(api: FakeBotApi) -> None:
    update = await api.push_text(USER, "awaited")
    assert update["message"]["text"] == "awaited"
    assert api.push_text(USER, "plain")["update_id"] == update["update_id"] + 1


# -- the real python-telegram-bot Application against the fake -----------------------------


async def test_application_end_to_end(api: FakeBotApi) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "Which error do you see?",
            reply_markup=keyboard(InlineKeyboardButton("Sign-in failed", callback_data="e:1")),
        )

    async def tapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"You chose <b>{query.data}</b>", parse_mode="HTML")

    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(api.base_url)
        .base_file_url(api.file_base_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(tapped))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            api.push_text(USER, "/start")
            (question,) = await api.wait_for_messages(USER, 1, timeout=5)
            assert question.message_id == 2
            api.push_button(USER, "Sign-in failed")
            await api.wait_for(lambda: api.chat(USER)[0].edited, timeout=5)
            assert api.chat(USER)[0].text == "You chose e:1"
            assert api.chat(USER)[0].reply_markup is None
            assert len(api.callback_answers) == 1
            await api.wait_idle(timeout=5, quiet=0.05)
        finally:
            await app.updater.stop()
            await app.stop()
    assert api.pending_updates == 0
    assert not api.errors


async def test_many_concurrent_users(api: FakeBotApi, session: aiohttp.ClientSession) -> None:
    users = range(2000, 2200)
    for user in users:
        api.push_text(user, "hi")

    async def reply(user: int) -> int:
        status, body = await raw_call(
            session, api, "sendMessage", json_body={"chat_id": user, "text": f"hello {user}"}
        )
        assert status == 200
        return int(body["result"]["message_id"])

    ids = await asyncio.gather(*(reply(user) for user in users))
    assert set(ids) == {2}  # each chat: the user's message 1, then the bot's message 2
    assert [[m.text for m in api.chat(user)] for user in users] == [
        [f"hello {user}"] for user in users
    ]
    assert api.method_counts["sendMessage"] == 200


async def test_user_details_reply_keyboards_and_replies(
    api: FakeBotApi, bot: Bot, session: aiohttp.ClientSession
) -> None:
    update = api.push_text(2002, "hallo", language_code="de", first_name="Jo", username="jo")
    api.block(2002)
    api.unblock(2002)
    assert api.add_user(2002)["language_code"] == "de"
    assert update["message"]["chat"] == {
        "id": 2002,
        "first_name": "Jo",
        "username": "jo",
        "type": "private",
    }
    sent = await bot.send_message("@jo", "Hi Jo", reply_to_message_id=1)
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "hallo"
    await expect_bad_request(
        api,
        bot.send_message(2002, "x", reply_to_message_id=99),
        "Bad Request: message to be replied not found",
    )
    status, body = await raw_call(
        session,
        api,
        "sendMessage",
        json_body={"chat_id": 2002, "text": "k", "reply_markup": {"keyboard": [[7]]}},
    )
    assert (status, body["description"]) == (
        400,
        "Bad Request: can't parse keyboard button: Can't find field \"text\"",
    )
    status, body = await raw_call(
        session,
        api,
        "sendMessage",
        json_body={"chat_id": 2002, "text": "k", "reply_markup": {"keyboard": [["Yes", "No"]]}},
    )
    assert status == 200 and "reply_markup" not in body["result"]  # only inline ones echo


# -- groups and copies ---------------------------------------------------------------------

GROUP = -1001234567890


async def test_group_members_post_and_reply_to_the_bot(api: FakeBotApi, bot: Bot) -> None:
    assert api.add_group(GROUP, title="Operators")["type"] == "supergroup"
    post = await bot.send_message(GROUP, "<b>case</b> #user1001", parse_mode="HTML")
    assert post.chat.id == GROUP and post.chat.type == "supergroup"
    assert [m.text for m in api.chat(GROUP)] == ["case #user1001"]
    api.push_group_text(GROUP, 7, "chatting among us", first_name="Op")
    api.push_group_text(GROUP, 8, "hello there", reply_to=post.message_id, username="op8")
    updates = await bot.get_updates(timeout=0)
    first, second = (u.message for u in updates)
    assert first is not None and second is not None
    assert first.reply_to_message is None and first.from_user is not None
    assert first.from_user.id == 7 and first.chat.id == GROUP
    assert second.from_user is not None and second.from_user.username == "op8"
    assert second.reply_to_message is not None
    assert second.reply_to_message.message_id == post.message_id
    assert second.reply_to_message.from_user is not None
    assert second.reply_to_message.from_user.is_bot
    assert second.message_id > post.message_id  # one sequence of ids per chat
    with pytest.raises(ValueError, match="no message"):
        api.push_group_text(GROUP, 8, "x", reply_to=999)
    with pytest.raises(ValueError, match="add_group"):
        api.push_group_text(-5, 8, "x")
    with pytest.raises(ValueError, match="negative"):
        api.add_group(5)


async def test_copy_message_between_chats(api: FakeBotApi, bot: Bot) -> None:
    api.add_group(GROUP)
    photo_id = api.add_file(_png(4, 3))
    sent = api.push_message(
        USER, photo=[api.file_object(photo_id, width=4, height=3)], caption="my screen"
    )
    api.push_text(USER, "plain words")
    copied = await bot.copy_message(GROUP, USER, sent["message"]["message_id"])
    [copy] = api.chat(GROUP)
    assert copy.message_id == copied.message_id
    assert copy.kind == "photo" and copy.file_id == photo_id and copy.caption == "my screen"
    text_copy = await bot.copy_message(GROUP, USER, sent["message"]["message_id"] + 1)
    assert api.chat(GROUP)[-1].text == "plain words"
    back = await bot.copy_message(USER, GROUP, text_copy.message_id)  # the bot's own post
    assert api.chat(USER)[-1].message_id == back.message_id
    assert api.chat(USER)[-1].text == "plain words"
    await expect_bad_request(
        api, bot.copy_message(GROUP, USER, 999), "Bad Request: message to copy not found"
    )
    await expect_bad_request(api, bot.copy_message(GROUP, 4242, 1), "Bad Request: chat not found")
    api.block(USER)
    with pytest.raises(Forbidden):
        await bot.copy_message(USER, GROUP, text_copy.message_id)
