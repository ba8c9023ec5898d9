"""A fake Telegram Bot API server, as strict as Telegram, for end-to-end tests and benchmarks.

The real bot (python-telegram-bot) is pointed at it with ``base_url``::

    async with FakeBotApi(token="123456:TEST-token") as api:
        app = (
            ApplicationBuilder()
            .token(api.token)
            .base_url(api.base_url)
            .base_file_url(api.file_base_url)
            .build()
        )
        ...
        api.push_text(42, "/start")
        messages = await api.wait_for_messages(42, 1)

What it does like Telegram:

* routes ``/bot<token>/<method>`` (GET or POST; JSON, form-urlencoded or multipart bodies;
  method names are case-insensitive); wrong token -> 401, malformed token or unknown
  method -> 404;
* answers with Telegram's exact shapes (``{"ok": true, "result": ...}``) and Telegram's
  exact error descriptions, so python-telegram-bot raises the same ``BadRequest``,
  ``Forbidden``, ``RetryAfter``, ``Conflict`` as against the real server;
* parses ``parse_mode="HTML"`` like Telegram (TDLib's rules: allowed tags, entity
  decoding, byte offsets in error messages), counts lengths in UTF-16 code units, trims
  surrounding whitespace, validates inline keyboards (64-byte ``callback_data``, URL
  buttons), tracks message state for ``editMessageText``/``editMessageReplyMarkup``
  ("message is not modified", "message to edit not found"), expires callback queries;
* long polling: ``getUpdates`` returns at once when updates are queued, otherwise waits up
  to ``timeout`` seconds; a newer ``getUpdates`` terminates an older one with 409;
* groups (``add_group``): messages from several members, with ``reply_to_message`` when they
  reply to a post; ``copyMessage`` between any two known chats.

Everything is in memory and bounded; each request costs O(1) apart from the size of its own
payload. Only 127.0.0.1 is ever bound.

Known deviations: ``parse_mode`` ``Markdown``/``MarkdownV2`` are refused with a clear 400
(use HTML), inline messages are not supported, URL fetching (sending a photo by URL) fails
as if the URL were unreachable.

Run standalone (for a bot in another process): ``python -m tests.support.fakebotapi --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import signal
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web

from tests.support.fakewebhook import WEBHOOK_CONFLICT, WebhookDelivery

__all__ = [
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_CAPTION_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "BotMessage",
    "CallbackAnswer",
    "ErrorRecord",
    "FakeBotApi",
    "RequestRecord",
    "Update",
    "UploadedFile",
    "parse_html",
    "utf16_len",
]

JSONDict = dict[str, Any]

MAX_MESSAGE_LENGTH = 4096
"""Longest message text, in UTF-16 code units after entity parsing."""
MAX_CAPTION_LENGTH = 1024
"""Longest media caption, in UTF-16 code units after entity parsing."""
MAX_CALLBACK_DATA_BYTES = 64
"""Longest ``callback_data`` of an inline button, in UTF-8 bytes."""
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_COMMANDS = 100
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
_CHUNK = 64 * 1024  # bytes per write of a streamed download
MAX_UPLOAD_SIZE = 50 * 1024 * 1024

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
BLOCKED = "Forbidden: bot was blocked by the user"

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_INCOMING_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@])")
_HOST_RE = re.compile(r"[\w](?:[\w.-]*[\w])?")
_PLAIN_RUN = re.compile(r"[^<&]+")
_SPACES = " \t\n\r\v\f"

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "cache_time",
        "user_id",
        "message_thread_id",
        "reply_to_message_id",
        "max_connections",
        "from_chat_id",
    }
)
_FLOAT_FIELDS = frozenset({"timeout"})
# Media a copyMessage can carry over (service messages and the like cannot be copied).
_COPYABLE_MEDIA = (
    "photo",
    "document",
    "sticker",
    "voice",
    "video",
    "video_note",
    "audio",
    "animation",
    "location",
    "contact",
)
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
        "disable_content_type_detection",
        "allow_paid_broadcast",
        "show_caption_above_media",
    }
)
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "media",
    }
)
_ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
    }
)
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    @classmethod
    def bad(cls, what: str) -> ApiError:
        """A 400 error whose description is ``"Bad Request: " + what``."""
        return cls(400, f"Bad Request: {what}")

    def payload(self) -> JSONDict:
        """The JSON body Telegram sends for this error."""
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class EntityParseError(ValueError):
    """Text with a ``parse_mode`` could not be parsed; the message is Telegram's."""


# ----------------------------------------------------------------------------------------
# Text: UTF-16 lengths, HTML parsing, URLs, entities
# ----------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram counts in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _decode_html_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode the character reference starting at ``text[pos] == "&"`` like Telegram.

    Returns the character and the index after the reference, or ``(None, pos)`` when the
    ampersand does not start a supported reference (Telegram then keeps it literally).
    The trailing semicolon is optional, as in Telegram.
    """
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF" and end - pos < 12:
                value = value * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and text[end] in "0123456789" and end - pos < 12:
                value = value * 10 + int(text[end])
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
            return None, pos
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        decoded = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(text[pos + 1 : end])
        if decoded is None:
            return None, pos
        char = decoded
    if end < n and text[end] == ";":
        end += 1
    return char, end


def check_url(url: str) -> tuple[str | None, str]:
    """Validate a link like Telegram; return ``(normalized_url, "")`` or ``(None, reason)``.

    ``http``/``https`` links need a host with a dot; a link without a scheme is taken as
    ``http``; ``tg:`` and ``ton:`` links pass; other schemes are "Unsupported URL protocol".
    An ``http(s)`` link without a path gets the ``/`` Telegram adds.
    """
    stripped = url.strip()
    scheme, sep, rest = stripped.partition("://")
    if not sep:
        if re.match(r"^(tg|ton):", stripped, re.IGNORECASE):
            return stripped, ""
        scheme, rest = "http", stripped
    scheme = scheme.lower()
    if scheme in ("tg", "ton"):
        return stripped, ""
    if scheme not in ("http", "https"):
        return None, "Unsupported URL protocol"
    split = re.search(r"[/?#]", rest)
    authority, tail = (rest[: split.start()], rest[split.start() :]) if split else (rest, "")
    host = authority.rpartition("@")[2]
    host = re.sub(r":\d{1,5}$", "", host)
    if not host:
        return None, "URL host is empty"
    if "." not in host or not _HOST_RE.fullmatch(host) or " " in tail:
        return None, "Wrong HTTP URL"
    if not tail.startswith("/"):
        tail = "/" + tail
    return f"{scheme}://{authority}{tail}", ""


@dataclass
class _OpenTag:
    name: str
    argument: str
    utf16_start: int
    piece_start: int
    expandable: bool


_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_ALLOWED_TAGS = frozenset({*_SIMPLE_TAGS, "a", "code", "pre", "blockquote", "tg-emoji"})


def _sorted_entities(entities: list[JSONDict]) -> list[JSONDict]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def parse_html(text: str, *, reject_bare_ampersand: bool = False) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into plain text and MessageEntity dicts.

    Follows Telegram's rules: supported tags are b/strong, i/em, u/ins, s/strike/del,
    tg-spoiler, span class="tg-spoiler", a href, code (class="language-x"), pre,
    blockquote (expandable) and tg-emoji; character references are &lt; &gt; &amp; &quot;
    and numeric ones; an ``&`` that starts no reference stays literal (unless
    ``reject_bare_ampersand``). Raises ``EntityParseError`` with Telegram's message, e.g.
    ``Unsupported start tag "foo" at byte offset 12``.
    """
    pieces: list[str] = []
    entities: list[JSONDict] = []
    stack: list[_OpenTag] = []
    utf16 = 0
    i = 0
    n = len(text)

    def offset(index: int) -> int:
        return _byte_offset(text, index)

    while i < n:
        run = _PLAIN_RUN.match(text, i)
        if run is not None:
            chunk = run.group()
            pieces.append(chunk)
            utf16 += utf16_len(chunk)
            i = run.end()
            continue
        if text[i] == "&":
            char, after = _decode_html_entity(text, i)
            if char is None:
                if reject_bare_ampersand:
                    raise EntityParseError(
                        f"Bare '&' at byte offset {offset(i)}; escape it as &amp;"
                    )
                char, after = "&", i + 1
            pieces.append(char)
            utf16 += utf16_len(char)
            i = after
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            i = _close_tag(text, begin, i + 1, stack, pieces, entities, utf16)
        else:
            i = _open_tag(text, begin, i, stack, len(pieces), utf16)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)  # kept only while a <pre> could still claim it
    return "".join(pieces), _sorted_entities(entities)


def _skip_spaces(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _SPACES:
        i += 1
    return i


def _open_tag(
    text: str, begin: int, i: int, stack: list[_OpenTag], piece_start: int, utf16: int
) -> int:
    """Parse a start tag whose ``<`` is at ``begin``; return the index after its ``>``."""
    n = len(text)
    at = _byte_offset(text, begin)
    name_start = i
    while i < n and text[i] not in _SPACES and text[i] != ">":
        i += 1
    if i >= n:
        raise EntityParseError(f"Unclosed start tag at byte offset {at}")
    name = text[name_start:i].lower()
    if name not in _ALLOWED_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {at}')
    argument = ""
    expandable = False
    while True:  # each pass consumes at least one character, so this ends by ``n``
        i = _skip_spaces(text, i)
        if i >= n:
            raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {at}')
        if text[i] == ">":
            break
        attr_start = i
        while i < n and text[i] not in _SPACES and text[i] not in "=>":
            i += 1
        attribute = text[attr_start:i].lower()
        if not attribute:
            raise EntityParseError(f'Empty attribute name in the tag "{name}" at byte offset {at}')
        i = _skip_spaces(text, i)
        if i >= n or text[i] != "=":
            if name == "blockquote" and attribute == "expandable":
                expandable = True
                continue
            if i >= n:
                raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {at}')
            raise EntityParseError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{name}" at byte offset {at}'
            )
        i = _skip_spaces(text, i + 1)
        if i >= n:
            raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {at}')
        if text[i] in "'\"":
            quote = text[i]
            i += 1
            chars: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "&":
                    char, after = _decode_html_entity(text, i)
                    if char is not None:
                        chars.append(char)
                        i = after
                        continue
                chars.append(text[i])
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {at}")
            i += 1
            value = "".join(chars)
        else:
            token_start = i
            while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                i += 1
            value = text[token_start:i].lower()
            if i >= n or (text[i] not in _SPACES and text[i] != ">"):
                raise EntityParseError(
                    f"Unexpected end of name token at byte offset {_byte_offset(text, token_start)}"
                )
        if name == "a" and attribute == "href":
            argument = value
        elif name == "code" and attribute == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif name == "span" and attribute == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif name == "tg-emoji" and attribute == "emoji-id":
            argument = value
    if name == "span" and argument != "spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
    if name == "tg-emoji" and not (argument.isdigit() and 0 < int(argument) < 2**63):
        raise EntityParseError("Invalid custom emoji identifier specified")
    stack.append(_OpenTag(name, argument, utf16, piece_start, expandable))
    return i + 1


def _close_tag(
    text: str,
    begin: int,
    i: int,
    stack: list[_OpenTag],
    pieces: list[str],
    entities: list[JSONDict],
    utf16: int,
) -> int:
    """Parse an end tag whose ``<`` is at ``begin``; return the index after its ``>``."""
    n = len(text)
    at = _byte_offset(text, begin)
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {at}")
    name_start = i
    while i < n and text[i] not in _SPACES and text[i] != ">":
        i += 1
    end_name = text[name_start:i]
    i = _skip_spaces(text, i)
    if i >= n or text[i] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {at}")
    tag = stack.pop()
    if end_name and end_name.lower() != tag.name:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {at}, expected "</{tag.name}>", '
            f'found "</{end_name}>"'
        )
    if utf16 > tag.utf16_start:
        _add_tag_entity(tag, utf16, pieces, entities)
    return i + 1


def _add_tag_entity(
    tag: _OpenTag, utf16_end: int, pieces: list[str], entities: list[JSONDict]
) -> None:
    start, length = tag.utf16_start, utf16_end - tag.utf16_start
    entity: JSONDict = {"offset": start, "length": length}
    if tag.name in _SIMPLE_TAGS:
        entity["type"] = _SIMPLE_TAGS[tag.name]
    elif tag.name == "a":
        url, _ = check_url(tag.argument or "".join(pieces[tag.piece_start :]))
        if url is None:
            return  # Telegram silently drops links it cannot use
        entity.update(type="text_link", url=url)
    elif tag.name == "code":
        last = entities[-1] if entities else None
        if last and last["type"] == "pre" and (last["offset"], last["length"]) == (start, length):
            if tag.argument:
                last["language"] = tag.argument
            return
        entity["type"] = "code"
        if tag.argument:
            entity["language"] = tag.argument
    elif tag.name == "pre":
        last = entities[-1] if entities else None
        if last and last["type"] == "code" and (last["offset"], last["length"]) == (start, length):
            entities.pop()
            if "language" in last:
                entity["language"] = last["language"]
        entity["type"] = "pre"
    elif tag.name == "blockquote":
        entity["type"] = "expandable_blockquote" if tag.expandable else "blockquote"
    else:  # tg-emoji
        entity.update(type="custom_emoji", custom_emoji_id=tag.argument)
    entities.append(entity)


def _trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Strip surrounding whitespace like Telegram and shift/clip entities accordingly."""
    stripped = text.strip(_SPACES)
    if stripped == text:
        return text, entities
    lead = len(text) - len(text.lstrip(_SPACES))  # whitespace is 1 UTF-16 unit per char
    size = utf16_len(stripped)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(size, entity["offset"] + entity["length"] - lead)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def incoming_entities(text: str) -> list[JSONDict]:
    """Entities Telegram would mark in a user's text: a leading ``/command`` is bot_command."""
    match = _INCOMING_COMMAND_RE.match(text)
    if match is None:
        return []
    return [{"offset": 0, "length": utf16_len(match.group()), "type": "bot_command"}]


def _validate_entities(value: Any, text: str) -> list[JSONDict]:
    """Check explicitly given entities like Telegram; return them normalized."""
    if not isinstance(value, list):
        raise ApiError.bad("can't parse entities JSON object")
    size = utf16_len(text)
    result: list[JSONDict] = []
    for raw in value:
        if not isinstance(raw, dict):
            raise ApiError.bad("can't parse MessageEntity: expected an Object")
        kind = raw.get("type")
        if kind not in _ENTITY_TYPES:
            raise ApiError.bad("can't parse MessageEntity: Unsupported type specified")
        start, length = raw.get("offset"), raw.get("length")
        if not isinstance(start, int) or not isinstance(length, int):
            raise ApiError.bad('can\'t parse MessageEntity: Field "offset" must be a Number')
        if start < 0:
            raise ApiError.bad(f"receive an entity with incorrect offset {start}")
        if length < 0:
            raise ApiError.bad(f"receive an entity with incorrect length {length}")
        if start > size:
            raise ApiError.bad(f"entity begins after the end of the text at UTF-16 offset {start}")
        if start + length > size:
            raise ApiError.bad(
                f"entity beginning at UTF-16 offset {start} ends after the end of the text "
                f"at UTF-16 offset {start + length}"
            )
        entity: JSONDict = {"offset": start, "length": length, "type": kind}
        if kind == "text_link":
            if "url" not in raw:
                raise ApiError.bad("can't parse MessageEntity: Can't find field \"url\"")
            url, reason = check_url(str(raw["url"]))
            if url is None:
                raise ApiError.bad(f"entity URL '{raw['url']}' is invalid: {reason}")
            entity["url"] = url
        elif kind == "text_mention":
            if not isinstance(raw.get("user"), dict):
                raise ApiError.bad("can't parse MessageEntity: Can't find field \"user\"")
            entity["user"] = raw["user"]
        elif kind == "custom_emoji":
            if "custom_emoji_id" not in raw:
                raise ApiError.bad(
                    "can't parse MessageEntity: Can't find field \"custom_emoji_id\""
                )
            entity["custom_emoji_id"] = str(raw["custom_emoji_id"])
        elif kind == "pre" and raw.get("language"):
            entity["language"] = str(raw["language"])
        if length > 0:
            result.append(entity)
    return _sorted_entities(result)


def _validate_inline_keyboard(markup: JSONDict) -> JSONDict:
    """Validate an InlineKeyboardMarkup like Telegram; return the form Telegram echoes."""
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list):
        raise ApiError.bad('field "inline_keyboard" must be of type Array')
    echoed: list[list[JSONDict]] = []
    for row in rows:
        if not isinstance(row, list):
            raise ApiError.bad('field "inline_keyboard" must be an Array of Arrays')
        echoed.append([_validate_inline_button(button) for button in row])
    return {"inline_keyboard": echoed}


def _validate_inline_button(button: Any) -> JSONDict:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise ApiError.bad(prefix + "InlineKeyboardButton must be an Object")
    if "text" not in button:
        raise ApiError.bad(prefix + 'Can\'t find field "text"')
    label = button["text"]
    if not isinstance(label, str):
        raise ApiError.bad(prefix + 'Field "text" must be of type String')
    actions = [
        name
        for name in _BUTTON_ACTIONS
        if button.get(name) is not None
        and not (name in ("url", "callback_data") and button[name] == "")
        and not (name == "pay" and button[name] is False)
    ]
    if not actions:
        raise ApiError.bad(prefix + "Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise ApiError.bad(
            prefix + f"exactly one of the optional fields must be used, got {', '.join(actions)}"
        )
    if not label.strip():
        raise ApiError.bad("BUTTON_TEXT_INVALID")
    action = actions[0]
    value = button[action]
    echoed: JSONDict = {"text": label}
    if action == "callback_data":
        if not isinstance(value, str):
            raise ApiError.bad(prefix + 'Field "callback_data" must be of type String')
        if len(value.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            raise ApiError.bad("BUTTON_DATA_INVALID")
    elif action == "url":
        if not isinstance(value, str):
            raise ApiError.bad(prefix + 'Field "url" must be of type String')
        url, reason = check_url(value)
        if url is None:
            raise ApiError.bad(f"inline keyboard button URL '{value}' is invalid: {reason}")
        value = url
    echoed[action] = value
    return echoed


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP image; ``None`` if not an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 1, 1
    if data.startswith(b"\xff\xd8"):
        i = 2
        for _ in range(4096):  # JPEG segments; a real file has a few dozen
            if i + 9 > len(data) or data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


# ----------------------------------------------------------------------------------------
# Records and state
# ----------------------------------------------------------------------------------------


class Update(dict[str, Any]):
    """An Update as a plain dict; it may also be awaited (resolving to itself at once)."""

    def __await__(self) -> Generator[Any, None, Update]:
        return self._resolved().__await__()

    async def _resolved(self) -> Update:
        return self


class RequestRecord(NamedTuple):
    """One request the bot made: method (canonical name), decoded params, HTTP status."""

    method: str
    params: JSONDict
    status: int


class ErrorRecord(NamedTuple):
    """One request that was answered with an error, with Telegram's description."""

    method: str
    params: JSONDict
    status: int
    description: str


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, {len(self.data)} bytes)"


@dataclass
class CallbackAnswer:
    """An answerCallbackQuery call that Telegram accepted."""

    callback_query_id: str
    user_id: int
    message_id: int
    data: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    latency: float
    """Seconds from the tap (``push_tap``) to the answer."""


@dataclass
class BotMessage:
    """A message the bot sent, in its current state (edits applied), plus its history."""

    message_id: int
    chat_id: int
    date: int
    kind: str = "text"
    """``"text"``, ``"photo"``, ``"document"``, or for a copied message its media field
    (``"sticker"``, ``"voice"``…)."""
    text: str | None = None
    entities: list[JSONDict] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[JSONDict] = field(default_factory=list)
    reply_markup: JSONDict | None = None
    file_id: str | None = None
    media: JSONDict | list[JSONDict] | None = None
    reply_to_message_id: int | None = None
    edited: bool = False
    edit_date: int | None = None
    deleted: bool = False
    history: list[JSONDict] = field(default_factory=list)
    """Earlier versions, oldest first: dicts with text, entities, caption, reply_markup."""

    @property
    def buttons(self) -> list[JSONDict]:
        """The inline keyboard's buttons, row by row, flattened."""
        if not self.reply_markup:
            return []
        return [button for row in self.reply_markup["inline_keyboard"] for button in row]

    @property
    def button_texts(self) -> list[str]:
        """Labels of the inline keyboard's buttons."""
        return [button["text"] for button in self.buttons]

    def button(self, text: str) -> JSONDict:
        """The inline button labelled ``text``; ``KeyError`` if there is none."""
        for button in self.buttons:
            if button["text"] == text:
                return button
        raise KeyError(f"no button {text!r} on message {self.message_id}: {self.button_texts}")

    def _snapshot(self) -> JSONDict:
        return {
            "text": self.text,
            "entities": self.entities,
            "caption": self.caption,
            "caption_entities": self.caption_entities,
            "reply_markup": self.reply_markup,
            "edit_date": self.edit_date,
        }


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    hide_size: bool = False  # Telegram may leave file_size out of its metadata
    served: int = 0  # bytes written to downloaders so far


@dataclass
class _Chat:
    user: JSONDict
    chat: JSONDict
    last_message_id: int = 0
    blocked: bool = False
    bot_messages: dict[int, BotMessage] = field(default_factory=dict)
    user_messages: dict[int, JSONDict] = field(default_factory=dict)

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id


@dataclass
class _PendingQuery:
    user_id: int
    message_id: int
    data: str
    created: float


@dataclass
class _Failure:
    remaining: int
    status: int
    description: str
    parameters: JSONDict | None
    reset: bool = False  # drop the connection without an answer
    delay: float = 0.0  # answer only after this many seconds


class _Signal:
    """A broadcast wake-up: every ``fire()`` wakes all current waiters; no polling."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """Wait for the next ``fire()`` at most ``timeout`` seconds; True if it fired."""
        event = self._event
        if timeout <= 0:
            return False
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True


def _normalize(name: str, value: Any) -> Any:
    """Decode a request parameter: forms carry JSON-encoded values as strings."""
    if not isinstance(value, str):
        return value
    if name in _INT_FIELDS and re.fullmatch(r"-?\d{1,20}", value):
        return int(value)
    if name in _FLOAT_FIELDS:
        with contextlib.suppress(ValueError):
            return float(value)
    if name in _BOOL_FIELDS and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if name in _JSON_FIELDS:
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


class _Params:
    """Decoded parameters of one request, with typed accessors."""

    def __init__(self, values: JSONDict) -> None:
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def get_int(self, name: str, default: int) -> int:
        value = self.values.get(name)
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        return default

    def get_number(self, name: str, default: float) -> float:
        value = self.values.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return default

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        return value is True or value == 1

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)


# ----------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------


Handler = Callable[[_Params], Awaitable[Any]]


class FakeBotApi:
    """An in-memory Telegram Bot API server on 127.0.0.1 for end-to-end tests.

    Use ``async with FakeBotApi() as api:``; point the bot at ``api.base_url`` and
    ``api.file_base_url``; drive users with ``push_text``/``push_tap``/``push_message``;
    observe with ``chat``, ``last_message``, ``requests``, ``errors``, ``callback_answers``;
    synchronise with the ``wait_*`` coroutines, which raise ``AssertionError`` describing
    what was seen when their timeout passes.
    """

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        port: int = 0,
        bot_username: str = "fake_support_bot",
        bot_first_name: str = "Support Bot",
        callback_query_timeout: float = 15.0,
        max_poll_timeout: float = 50.0,
        max_records: int = 10_000,
        max_messages_per_chat: int = 1_000,
        max_pending_updates: int = 100_000,
        max_files: int = 10_000,
        reject_bare_ampersand: bool = False,
        multiple_webhook_urls: bool = False,
        webhook_timeout: float = 10.0,
        webhook_retry_delay: float = 0.1,
    ) -> None:
        """Configure the server; nothing listens until ``start()`` / ``async with``.

        ``callback_query_timeout``: age in seconds after which answerCallbackQuery fails.
        ``max_poll_timeout``: cap on getUpdates' ``timeout``.
        ``max_records``: how many requests/errors/callback answers are kept (oldest drop).
        ``max_messages_per_chat``/``max_files``: bounds of stored state (oldest evicted).
        ``max_pending_updates``: pushing more unconsumed updates raises RuntimeError.
        ``reject_bare_ampersand``: stricter than Telegram, which keeps a lone ``&``.
        ``multiple_webhook_urls``: each setWebhook with a new URL joins a round robin (a load
        balancer over several instances; tests/support/fakewebhook.py); ``webhook_timeout``:
        seconds a delivery may take before it is tried again; ``webhook_retry_delay``: the
        wait before that.
        """
        if not _TOKEN_RE.match(token):
            raise ValueError(f"token {token!r} is not shaped like a bot token (123:abc)")
        self.token = token
        self._port = port
        self._bot_user: JSONDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self._callback_query_timeout = callback_query_timeout
        self._max_poll_timeout = max_poll_timeout
        self._max_messages_per_chat = max_messages_per_chat
        self._max_pending_updates = max_pending_updates
        self._max_files = max_files
        self._reject_bare_ampersand = reject_bare_ampersand

        self._chats: dict[int, _Chat] = {}
        self._updates: deque[JSONDict] = deque()
        self._last_update_id = 0
        self._delivered_update_id = 0
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._poll_waiting = 0
        self._queries: dict[str, _PendingQuery] = {}
        self._query_ids = itertools.count(4_000_000_000_000_000_001)
        self._files: dict[str, _StoredFile] = {}
        self._file_paths: dict[str, str] = {}
        self._file_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._confirmed: set[int] = set()
        self._fetched: set[int] = set()

        self._requests: deque[RequestRecord] = deque(maxlen=max_records)
        self._errors: deque[ErrorRecord] = deque(maxlen=max_records)
        self._callback_answers: deque[CallbackAnswer] = deque(maxlen=max_records)
        self.method_counts: Counter[str] = Counter()
        """Number of calls per method since start (never truncated)."""
        self.observers: list[Callable[[str, JSONDict, Any], None]] = []
        """Called with (method, params, result) the moment a request has succeeded, before
        the answer is sent: benchmarks time replies with it. Keep them quick."""

        self._updates_signal = _Signal()
        self._state_signal = _Signal()
        self._inflight = 0
        self._last_activity = 0.0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.webhook = WebhookDelivery(
            self,
            multiple_urls=multiple_webhook_urls,
            timeout=webhook_timeout,
            retry_delay=webhook_retry_delay,
        )
        """setWebhook's state and deliveries (tests/support/fakewebhook.py)."""

        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in (
                ("getMe", self._get_me),
                ("logOut", self._true),
                ("close", self._true),
                ("setWebhook", self._set_webhook),
                ("deleteWebhook", self._delete_webhook),
                ("getWebhookInfo", self._get_webhook_info),
                ("getUpdates", self._get_updates),
                ("sendMessage", self._send_message),
                ("editMessageText", self._edit_message_text),
                ("editMessageReplyMarkup", self._edit_message_reply_markup),
                ("deleteMessage", self._delete_message),
                ("copyMessage", self._copy_message),
                ("answerCallbackQuery", self._answer_callback_query),
                ("setMyCommands", self._set_my_commands),
                ("getMyCommands", self._get_my_commands),
                ("deleteMyCommands", self._delete_my_commands),
                ("sendChatAction", self._send_chat_action),
                ("sendPhoto", self._send_photo),
                ("sendDocument", self._send_document),
                ("getFile", self._get_file),
            )
        }

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening on 127.0.0.1 (port 0 picks a free one)."""
        if self._runner is not None:
            raise RuntimeError("FakeBotApi is already running")
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self._port).start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        self._closing = False
        self._last_activity = asyncio.get_running_loop().time()

    async def stop(self) -> None:
        """Stop listening; pending long polls return at once."""
        self._closing = True
        self._updates_signal.fire()
        await self.webhook.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """Value for python-telegram-bot's ``base_url`` (the token is appended by it)."""
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        """Value for python-telegram-bot's ``base_file_url``."""
        return f"{self.url}/file/bot"

    @property
    def bot_user(self) -> JSONDict:
        """The bot's User object as getMe returns it."""
        return dict(self._bot_user)

    # -- test side: users and updates ----------------------------------------------------

    def add_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> JSONDict:
        """Make ``user_id`` known (as if they had written to the bot); return their User.

        New users default to first name ``User<id>`` and language ``en``; later calls
        update only the fields given. Sending to users never added gets "chat not found".
        """
        if user_id <= 0:
            raise ValueError("private chats have positive ids")
        chat = self._chats.get(user_id)
        if chat is None:
            user: JSONDict = {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name or f"User{user_id}",
                "language_code": language_code or "en",
            }
            chat = _Chat(user=user, chat={})
            self._chats[user_id] = chat
        user = chat.user
        if first_name is not None:
            user["first_name"] = first_name
        for key, value in (
            ("last_name", last_name),
            ("username", username),
            ("language_code", language_code),
        ):
            if value is not None:
                user[key] = value
        chat.chat = {
            "id": user_id,
            "first_name": user["first_name"],
            **{k: user[k] for k in ("last_name", "username") if k in user},
            "type": "private",
        }
        return dict(user)

    def add_group(
        self, chat_id: int, *, title: str = "Support", chat_type: str = "supergroup"
    ) -> JSONDict:
        """Make a group the bot is a member of known; return its Chat object.

        Group ids are negative (supergroups look like ``-100…``). Members post in it with
        ``push_group_text``/``push_group_message``; ``chat(chat_id)`` lists the bot's posts.
        """
        if chat_id >= 0:
            raise ValueError("group chats have negative ids")
        if chat_type not in ("group", "supergroup"):
            raise ValueError(f"chat_type must be 'group' or 'supergroup', not {chat_type!r}")
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = _Chat(user={}, chat={})
            self._chats[chat_id] = chat
        chat.chat = {"id": chat_id, "title": title, "type": chat_type}
        return dict(chat.chat)

    def push_group_text(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        language_code: str = "en",
        first_name: str | None = None,
        username: str | None = None,
    ) -> Update:
        """Queue a text message from member ``user_id`` in group ``chat_id``; see below."""
        return self.push_group_message(
            chat_id,
            user_id,
            reply_to=reply_to,
            language_code=language_code,
            first_name=first_name,
            username=username,
            text=text,
        )

    def push_group_message(
        self,
        chat_id: int,
        user_id: int,
        *,
        reply_to: int | None = None,
        language_code: str = "en",
        first_name: str | None = None,
        username: str | None = None,
        **fields: Any,
    ) -> Update:
        """Queue a message from member ``user_id`` in group ``chat_id`` (see ``add_group``).

        ``reply_to``: the id of a message in that group (the bot's or a member's), sent along
        as ``reply_to_message`` the way Telegram does. The member becomes a known user.
        """
        group = self._chats.get(chat_id)
        if group is None or group.chat.get("type") not in ("group", "supergroup"):
            raise ValueError(f"no group {chat_id}: call add_group first")
        self.add_user(
            user_id, first_name=first_name, username=username, language_code=language_code
        )
        message: JSONDict = {
            "message_id": group.next_message_id(),
            "from": dict(self._chats[user_id].user),
            "chat": dict(group.chat),
            "date": int(time.time()),
            **fields,
        }
        if reply_to is not None:
            replied = group.user_messages.get(reply_to)
            bot_message = group.bot_messages.get(reply_to)
            if replied is None and bot_message is not None and not bot_message.deleted:
                replied = self._message_dict(group, bot_message)
            if replied is None:
                raise ValueError(f"group {chat_id} has no message {reply_to}")
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        if isinstance(message.get("text"), str) and "entities" not in fields:
            found = incoming_entities(message["text"])
            if found:
                message["entities"] = found
        self._remember(group.user_messages, message["message_id"], message)
        return self._enqueue({"message": message})

    def push_text(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str = "en",
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        entities: list[JSONDict] | None = None,
    ) -> Update:
        """Queue a private-chat text message from ``user_id``; return the Update.

        A leading ``/command`` gets a bot_command entity unless ``entities`` is given.
        """
        fields: JSONDict = {"text": text}
        if entities is not None:
            fields["entities"] = entities
        return self.push_message(
            user_id,
            language_code=language_code,
            first_name=first_name,
            last_name=last_name,
            username=username,
            **fields,
        )

    def push_message(
        self,
        user_id: int,
        *,
        language_code: str = "en",
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        **fields: Any,
    ) -> Update:
        """Queue a private-chat message from ``user_id`` with arbitrary Message ``fields``.

        E.g. ``sticker={...}``, ``photo=[api.file_object(fid, width=90, height=90)]``,
        ``document=api.file_object(fid, file_name="a.pdf")``, ``voice={...}``, ``text=...``.
        ``message_id``, ``from``, ``chat`` and ``date`` are filled in.
        """
        self.add_user(
            user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        chat = self._chats[user_id]
        message: JSONDict = {
            "message_id": chat.next_message_id(),
            "from": dict(chat.user),
            "chat": dict(chat.chat),
            "date": int(time.time()),
            **fields,
        }
        if isinstance(message.get("text"), str) and "entities" not in fields:
            found = incoming_entities(message["text"])
            if found:
                message["entities"] = found
        self._remember(chat.user_messages, message["message_id"], message)
        return self._enqueue({"message": message})

    def push_tap(
        self, user_id: int, message_id: int, data: str, *, language_code: str = "en"
    ) -> Update:
        """Queue a callback_query: ``user_id`` tapped a button with ``data`` on a bot message.

        The message must be one the bot sent to that user; ``data`` is not checked against
        its buttons (forged data is allowed). The answer deadline starts now.
        """
        self.add_user(user_id, language_code=language_code)
        chat = self._chats[user_id]
        message = chat.bot_messages.get(message_id)
        if message is None or message.deleted:
            raise ValueError(
                f"user {user_id} has no bot message {message_id}; have {sorted(chat.bot_messages)}"
            )
        query_id = str(next(self._query_ids))
        self._queries[query_id] = _PendingQuery(
            user_id, message_id, data, asyncio.get_running_loop().time()
        )
        while len(self._queries) > 10_000:  # bounded: forget the oldest unanswered
            self._queries.pop(next(iter(self._queries)))
        return self._enqueue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": dict(chat.user),
                    "message": self._message_dict(chat, message),
                    "chat_instance": str(-(user_id * 7919 % 10**12) - 1),
                    "data": data,
                }
            }
        )

    def push_button(
        self,
        user_id: int,
        text: str,
        *,
        message_id: int | None = None,
        language_code: str = "en",
    ) -> Update:
        """Tap the callback button labelled ``text`` (on the newest message showing it)."""
        candidates = [
            message
            for message in reversed(self.chat(user_id))
            if message_id in (None, message.message_id) and text in message.button_texts
        ]
        if not candidates:
            seen = [(m.message_id, m.button_texts) for m in self.chat(user_id)]
            raise ValueError(f"no button {text!r} for user {user_id}; buttons: {seen}")
        button = candidates[0].button(text)
        if "callback_data" not in button:
            raise ValueError(f"button {text!r} is not a callback button: {button}")
        return self.push_tap(
            user_id,
            candidates[0].message_id,
            button["callback_data"],
            language_code=language_code,
        )

    def add_file(
        self, data: bytes, *, file_name: str | None = None, hide_size: bool = False
    ) -> str:
        """Register file bytes (as if a user had sent them); return its file_id.

        With ``hide_size``, neither ``file_object`` nor ``getFile`` tell its ``file_size``.
        """
        folder = "photos" if _image_size(data) else "documents"
        file_id = self._store_file(data, folder, file_name)
        self._files[file_id].hide_size = hide_size
        return file_id

    def file_object(self, file_id: str, **extra: Any) -> JSONDict:
        """A File-like dict (file_id, file_unique_id, file_size) plus ``extra`` fields."""
        stored = self._files[file_id]
        size = {} if stored.hide_size else {"file_size": len(stored.data)}
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            **size,
            **extra,
        }

    def served_bytes(self, file_id: str) -> int:
        """How many bytes of the file were written to downloaders (the kernel may buffer some)."""
        return self._files[file_id].served

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes stored under ``file_id`` (uploaded by the bot or added by a test)."""
        return self._files[file_id].data

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sending to them answers 403."""
        self.add_user(user_id)
        self._chats[user_id].blocked = True
        self._touch()

    def unblock(self, user_id: int) -> None:
        """The user unblocks the bot."""
        self.add_user(user_id)
        self._chats[user_id].blocked = False
        self._touch()

    def fail_next(
        self,
        method: str,
        n: int = 1,
        retry_after: int = 1,
        *,
        status: int = 429,
        description: str | None = None,
    ) -> None:
        """Answer the next ``n`` calls of ``method`` (``"*"``: any) with an error.

        By default a 429 "Too Many Requests: retry after N" with ``retry_after``; with
        ``status``/``description`` any other error. Failed calls have no effect.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        if status == 429:
            text = description or f"Too Many Requests: retry after {retry_after}"
            parameters: JSONDict | None = {"retry_after": retry_after}
        else:
            text = description or f"Error {status}"
            parameters = None
        self._failures.setdefault(method.lower(), deque()).append(
            _Failure(n, status, text, parameters)
        )

    def reset_next(self, method: str, n: int = 1) -> None:
        """Drop the connection of the next ``n`` calls of ``method`` (a TCP reset, no answer).

        The calls have no effect.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        failure = _Failure(n, 0, "connection reset", None, reset=True)
        self._failures.setdefault(method.lower(), deque()).append(failure)

    def slow_next(self, method: str, seconds: float, n: int = 1) -> None:
        """Answer the next ``n`` calls of ``method`` only after ``seconds``, with a 504.

        Past the client's timeout the client has given up; the calls have no effect.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        failure = _Failure(n, 504, "Gateway Timeout", None, delay=seconds)
        self._failures.setdefault(method.lower(), deque()).append(failure)

    @property
    def confirmed_update_ids(self) -> frozenset[int]:
        """Update ids the bot confirmed (a later getUpdates offset): Telegram forgets them."""
        return frozenset(self._confirmed)

    @property
    def fetched_update_ids(self) -> frozenset[int]:
        """Update ids getUpdates has returned at least once (confirmed or not)."""
        return frozenset(self._fetched)

    # -- test side: observing --------------------------------------------------------------

    def chat(self, user_id: int, *, include_deleted: bool = False) -> list[BotMessage]:
        """The bot's messages to ``user_id``, oldest first, in their current state.

        The objects are live views of the server state: read them, do not modify them.
        """
        chat = self._chats.get(user_id)
        if chat is None:
            return []
        return [m for m in chat.bot_messages.values() if include_deleted or not m.deleted]

    def last_message(self, user_id: int) -> BotMessage | None:
        """The bot's newest (not deleted) message to ``user_id``, if any."""
        messages = self.chat(user_id)
        return messages[-1] if messages else None

    @property
    def requests(self) -> list[RequestRecord]:
        """Recent requests, oldest first (bounded by ``max_records``)."""
        return list(self._requests)

    @property
    def errors(self) -> list[ErrorRecord]:
        """Recent requests answered with an error, with descriptions."""
        return list(self._errors)

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        """Accepted answerCallbackQuery calls, oldest first."""
        return list(self._callback_answers)

    @property
    def unanswered_callback_queries(self) -> list[str]:
        """Ids of pushed callback queries that were not answered (yet)."""
        return list(self._queries)

    @property
    def polling(self) -> bool:
        """True while a getUpdates long poll is waiting for updates."""
        return self._poll_waiting > 0

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet acknowledged by getUpdates' offset."""
        return len(self._updates)

    def calls(self, method: str) -> list[RequestRecord]:
        """Recent requests of ``method`` (case-insensitive)."""
        wanted = method.lower()
        return [r for r in self._requests if r.method.lower() == wanted]

    def commands(self, *, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """Commands set with setMyCommands for ``scope`` and ``language_code``."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    def reset_records(self) -> None:
        """Forget recorded requests, errors, callback answers and method counts."""
        self._requests.clear()
        self._errors.clear()
        self._callback_answers.clear()
        self.method_counts.clear()

    def describe(self, user_id: int | None = None, *, last: int = 15) -> str:
        """A human-readable summary of recent activity (used in timeout messages)."""
        lines = [f"pending updates: {len(self._updates)}"]
        users = [user_id] if user_id is not None else list(self._chats)[-5:]
        for uid in users:
            shown = [
                (m.message_id, (m.text or m.caption or f"<{m.kind}>")[:80], m.button_texts)
                for m in self.chat(uid)[-8:]
            ]
            lines.append(f"bot messages to {uid}: {shown}")
        recent = list(self._requests)[-last:]
        lines.append("recent requests: " + (", ".join(f"{r.method}->{r.status}" for r in recent)))
        errors = list(self._errors)[-5:]
        if errors:
            lines.append(
                "recent errors: "
                + "; ".join(f"{e.method}: {e.status} {e.description}" for e in errors)
            )
        return "\n".join(lines)

    # -- test side: waiting ----------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        *,
        what: str | Callable[[], str] | None = None,
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every state change).

        Returns its value. After ``timeout`` raises AssertionError naming ``what`` (a text,
        or a function giving one at that moment) followed by ``describe()``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:  # each pass waits for a state change; ends by the deadline
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                label = what() if callable(what) else what
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {label or predicate!r}\n"
                    + self.describe()
                )
            await self._state_signal.wait(remaining)

    async def wait_for_messages(
        self, user_id: int, count: int, timeout: float = 10.0
    ) -> list[BotMessage]:
        """Wait until the bot has sent ``user_id`` at least ``count`` messages in total.

        Returns ``chat(user_id)``.
        """
        await self.wait_for(
            lambda: len(self.chat(user_id)) >= count,
            timeout,
            what=lambda: (
                f"{count} bot message(s) to user {user_id}, have {len(self.chat(user_id))}"
            ),
        )
        return self.chat(user_id)

    async def wait_for_calls(
        self, method: str, count: int = 1, timeout: float = 10.0
    ) -> list[RequestRecord]:
        """Wait until ``method`` has been called ``count`` times in total; return the calls."""
        key = method.lower()
        await self.wait_for(
            lambda: self._count(key) >= count,
            timeout,
            what=lambda: f"{count} call(s) of {method}, have {self._count(key)}",
        )
        return self.calls(method)

    async def wait_idle(self, timeout: float = 10.0, *, quiet: float = 0.1) -> None:
        """Wait until every pushed update was delivered and no request came for ``quiet`` s.

        Long polls (getUpdates waiting for updates) do not count as activity.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:  # each pass waits for a change or the end of the quiet period
            now = loop.time()
            busy = self._last_update_id > self._delivered_update_id or self._inflight > 0
            idle_for = now - self._last_activity
            if not busy and idle_for >= quiet:
                return
            if now >= deadline:
                raise AssertionError(
                    f"bot not idle after {timeout}s (undelivered updates: "
                    f"{self._last_update_id - self._delivered_update_id}, requests in flight: "
                    f"{self._inflight})\n" + self.describe()
                )
            pause = deadline - now if busy else min(deadline - now, quiet - idle_for)
            await self._state_signal.wait(max(pause, 0.001))

    # -- internals: state ------------------------------------------------------------------

    def _count(self, method_lower: str) -> int:
        return sum(c for m, c in self.method_counts.items() if m.lower() == method_lower)

    def _touch(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._last_activity = asyncio.get_running_loop().time()
        self._state_signal.fire()

    def _remember(self, store: dict[int, Any], key: int, value: Any) -> None:
        store[key] = value
        while len(store) > self._max_messages_per_chat:
            store.pop(next(iter(store)))

    def _enqueue(self, payload: JSONDict) -> Update:
        if len(self._updates) >= self._max_pending_updates:
            raise RuntimeError(
                f"{len(self._updates)} updates are queued and unconsumed: is the bot polling?"
            )
        self._last_update_id += 1
        update = Update(update_id=self._last_update_id, **payload)
        self._updates.append(update)
        self._updates_signal.fire()
        self._touch()
        return update

    def _store_file(self, data: bytes, folder: str, file_name: str | None) -> str:
        number = next(self._file_counter)
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + re.sub(r"[^A-Za-z0-9]", "", file_name.rsplit(".", 1)[1])[:8]
        elif folder == "photos":
            suffix = ".jpg"
        stored = _StoredFile(
            file_id=f"FAKE{folder[:3].upper()}{number:010d}x{self._bot_user['id']}",
            file_unique_id=f"U{number:08d}",
            file_path=f"{folder}/file_{number}{suffix}",
            data=data,
        )
        self._files[stored.file_id] = stored
        self._file_paths[stored.file_path] = stored.file_id
        while len(self._files) > self._max_files:
            old = self._files.pop(next(iter(self._files)))
            self._file_paths.pop(old.file_path, None)
        return stored.file_id

    def _message_dict(self, chat: _Chat, message: BotMessage) -> JSONDict:
        result: JSONDict = {
            "message_id": message.message_id,
            "from": self._bot_user,
            "chat": chat.chat,
            "date": message.date,
        }
        if message.edit_date is not None:
            result["edit_date"] = message.edit_date
        if message.reply_to_message_id is not None:
            replied = chat.user_messages.get(message.reply_to_message_id)
            if replied is None and message.reply_to_message_id in chat.bot_messages:
                replied = self._message_dict(chat, chat.bot_messages[message.reply_to_message_id])
            if replied is not None:
                result["reply_to_message"] = {
                    k: v for k, v in replied.items() if k != "reply_to_message"
                }
        if message.text is not None:
            result["text"] = message.text
            if message.entities:
                result["entities"] = message.entities
        if message.kind != "text" and message.media is not None:
            result[message.kind] = message.media
        if message.caption:
            result["caption"] = message.caption
            if message.caption_entities:
                result["caption_entities"] = message.caption_entities
        if message.reply_markup is not None:
            result["reply_markup"] = message.reply_markup
        return result

    # -- internals: HTTP -------------------------------------------------------------------

    @staticmethod
    async def _read_params(request: web.Request) -> JSONDict:
        """Merge the query string and the body (JSON, form or multipart) and decode them."""
        values: JSONDict = dict(request.query)
        if request.method != "GET" and request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise ApiError.bad("can't parse JSON encoded request body") from exc
                if not isinstance(body, dict):
                    raise ApiError.bad("JSON object expected as the request body")
                values.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        values[key] = UploadedFile(
                            value.filename, value.content_type, value.file.read()
                        )
                    else:
                        values[key] = value
        return {key: _normalize(key, value) for key, value in values.items()}

    def _check_token(self, token: str) -> None:
        if token == self.token:
            return
        if _TOKEN_RE.match(token):
            raise ApiError(401, "Unauthorized")
        raise ApiError(404, "Not Found")

    async def _handle_api(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        method = name
        params: JSONDict = {}
        key = name.lower()
        tracked = key != "getupdates"
        loop = asyncio.get_running_loop()
        if tracked:
            self._inflight += 1
            self._last_activity = loop.time()
        self._state_signal.fire()
        try:
            try:
                self._check_token(request.match_info["token"])
                entry = self._methods.get(key)
                if entry is None:
                    raise ApiError(404, "Not Found")
                method, handler = entry
                params = await self._read_params(request)
                failure = self._take_failure(key)
                if failure is not None:
                    await self._fail(request, failure)
                result = await handler(_Params(params))
            except ApiError as error:
                self._record(method, params, error.status, error.description)
                return web.json_response(error.payload(), status=error.status)
            except web.HTTPException:  # e.g. 413 for a body over client_max_size
                raise
            except Exception as exc:  # a bug here: answer 500 and make it visible in errors
                failure = ApiError(500, f"Internal Server Error: fake Bot API failed: {exc!r}")
                self._record(method, params, failure.status, failure.description)
                return web.json_response(failure.payload(), status=failure.status)
            self._record(method, params, 200, None)
            for observer in self.observers:
                observer(method, params, result)
            if not tracked and result:
                self._last_activity = loop.time()
            return web.json_response({"ok": True, "result": result})
        finally:
            if tracked:
                self._inflight -= 1
                self._last_activity = loop.time()
            self._state_signal.fire()

    def _take_failure(self, key: str) -> _Failure | None:
        for name in (key, "*"):
            queue = self._failures.get(name)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.popleft()
                return failure
        return None

    @staticmethod
    async def _fail(request: web.Request, failure: _Failure) -> None:
        """Carry out a scripted failure: wait, reset the connection, or answer an error."""
        if failure.delay:
            await asyncio.sleep(failure.delay)
        if failure.reset:
            transport = request.transport
            if transport is not None:
                sock = transport.get_extra_info("socket")
                if sock is not None:  # linger 0: close() sends a RST, not a FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            raise ApiError(500, "connection reset")  # never reaches the client
        raise ApiError(failure.status, failure.description, failure.parameters)

    def _record(self, method: str, params: JSONDict, status: int, description: str | None) -> None:
        self.method_counts[method] += 1
        self._requests.append(RequestRecord(method, params, status))
        if description is not None:
            self._errors.append(ErrorRecord(method, params, status, description))

    async def _handle_file(self, request: web.Request) -> web.Response:
        try:
            self._check_token(request.match_info["token"])
        except ApiError as error:
            return web.json_response(error.payload(), status=error.status)
        file_id = self._file_paths.get(request.match_info["path"])
        if file_id is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        stored = self._files[file_id]
        if not stored.hide_size:
            return web.Response(body=stored.data, content_type="application/octet-stream")
        # Chunked, without a Content-Length, counting what went out: a client that stops
        # reading at a size limit is seen stopping.
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(stored.data), _CHUNK):
            chunk = stored.data[start : start + _CHUNK]
            try:
                await response.write(chunk)
            except (ConnectionResetError, ConnectionError):
                return response
            stored.served += len(chunk)
            # Paced (about 30 MB/s), so that what a client has read is what went out, not
            # what the kernel's buffers (tens of MB on loopback) took in the meantime.
            await asyncio.sleep(0.002)
        await response.write_eof()
        return response

    # -- internals: shared validation ------------------------------------------------------

    @staticmethod
    def _require_chat_id(p: _Params) -> None:
        if p.get("chat_id") in (None, "") and not p.get("inline_message_id"):
            raise ApiError.bad("chat_id is empty")

    def _chat_for(self, p: _Params) -> _Chat:
        """Resolve ``chat_id`` like Telegram: missing -> "chat_id is empty", else known chat."""
        self._require_chat_id(p)
        raw = p.get("chat_id")
        chat: _Chat | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            chat = self._chats.get(raw)
        elif isinstance(raw, str) and raw.startswith("@"):
            wanted = raw[1:].lower()
            chat = next(
                (c for c in self._chats.values() if c.user.get("username", "").lower() == wanted),
                None,
            )
        if chat is None:
            raise ApiError.bad("chat not found")
        return chat

    @staticmethod
    def _check_can_send(chat: _Chat) -> None:
        if chat.blocked:
            raise ApiError(403, BLOCKED)

    @staticmethod
    def _message_id(p: _Params) -> int:
        if p.get("inline_message_id"):
            raise ApiError.bad("inline messages are not supported by the fake Bot API")
        message_id = p.get_int("message_id", 0)
        if message_id <= 0:
            raise ApiError.bad("message identifier is not specified")
        return message_id

    def _formatted(
        self,
        p: _Params,
        text_field: str,
        entities_field: str,
        *,
        limit: int,
        too_long: str,
        required: bool,
    ) -> tuple[str, list[JSONDict]]:
        """Text plus entities after parse_mode, trimmed and length-checked like Telegram."""
        raw = p.get(text_field)
        if raw is None or raw == "":
            if required:
                raise ApiError.bad("message text is empty")
            return "", []
        text = raw if isinstance(raw, str) else json.dumps(raw)
        explicit = p.get(entities_field)
        parse_mode = (p.get_str("parse_mode") or "").strip()
        if explicit is not None:
            entities = _validate_entities(explicit, text)
        elif parse_mode == "":
            entities = []
        elif parse_mode.lower() == "html":
            try:
                text, entities = parse_html(text, reject_bare_ampersand=self._reject_bare_ampersand)
            except EntityParseError as exc:
                raise ApiError.bad(f"can't parse entities: {exc}") from exc
        elif parse_mode.lower() in ("markdown", "markdownv2"):
            raise ApiError.bad(
                f"parse_mode {parse_mode} is not implemented by the fake Bot API; use HTML"
            )
        else:
            raise ApiError.bad("unsupported parse_mode")
        text, entities = _trim(text, entities)
        if not text:
            if required:
                raise ApiError.bad("text must be non-empty")
            return "", []
        if utf16_len(text) > limit:
            raise ApiError.bad(too_long)
        return text, entities

    @staticmethod
    def _reply_markup(p: _Params, *, inline_only: bool = False) -> JSONDict | None:
        """Validate reply_markup; return the inline keyboard as Telegram echoes it, or None."""
        raw = p.get("reply_markup")
        if raw is None or raw == "":
            return None
        if isinstance(raw, str):
            raise ApiError.bad("can't parse reply keyboard markup JSON object")
        if not isinstance(raw, dict):
            raise ApiError.bad("object expected as reply markup")
        if "inline_keyboard" in raw:
            echoed = _validate_inline_keyboard(raw)
            return echoed if echoed["inline_keyboard"] else None
        if inline_only:
            raise ApiError.bad("inline keyboard expected")
        if "keyboard" in raw:
            rows = raw["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise ApiError.bad('field "keyboard" must be of type Array')
            for row in rows:
                for button in row:
                    label = button.get("text") if isinstance(button, dict) else button
                    if not isinstance(label, str):
                        raise ApiError.bad("can't parse keyboard button: Can't find field \"text\"")
            return None
        for flag in ("remove_keyboard", "force_reply"):
            if flag in raw:
                if not isinstance(raw[flag], bool):
                    raise ApiError.bad(f'field "{flag}" must be of type Boolean')
                return None
        raise ApiError.bad("unsupported reply markup type")

    def _reply_to(self, chat: _Chat, p: _Params) -> int | None:
        parameters = p.get("reply_parameters")
        allow_missing = p.get_bool("allow_sending_without_reply")
        if isinstance(parameters, dict):
            if "message_id" not in parameters:
                raise ApiError.bad('can\'t find field "message_id"')
            target = parameters["message_id"]
            allow_missing = bool(parameters.get("allow_sending_without_reply", allow_missing))
        else:
            target = p.get_int("reply_to_message_id", 0) or None
        if target is None:
            return None
        exists = target in chat.user_messages or (
            target in chat.bot_messages and not chat.bot_messages[target].deleted
        )
        if exists:
            return int(target)
        if allow_missing:
            return None
        raise ApiError.bad("message to be replied not found")

    def _new_message(self, chat: _Chat, message: BotMessage) -> JSONDict:
        self._remember(chat.bot_messages, message.message_id, message)
        return self._message_dict(chat, message)

    # -- Bot API methods -------------------------------------------------------------------

    async def _true(self, p: _Params) -> bool:
        return True

    async def _get_me(self, p: _Params) -> JSONDict:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, p: _Params) -> bool:
        url = p.get_str("url") or ""
        if not url:  # Telegram: an empty URL removes the webhook
            self.webhook.delete()
            return True
        if not url.startswith(("https://", "http://127.0.0.1:")):
            raise ApiError.bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get_str("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError.bad("bad webhook: secret token contains unallowed characters")
        connections = p.get_int("max_connections", 40)
        if not 1 <= connections <= 100:
            raise ApiError.bad("bad webhook: max_connections must be between 1 and 100")
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(map(str, allowed)) or None
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
            self._delivered_update_id = self._last_update_id
        self.webhook.set(url, secret, connections)
        return True

    async def _delete_webhook(self, p: _Params) -> bool:
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
            self._delivered_update_id = self._last_update_id
        self.webhook.delete()
        return True

    async def _get_webhook_info(self, p: _Params) -> JSONDict:
        return self.webhook.info()

    async def _get_updates(self, p: _Params) -> list[JSONDict]:
        if self.webhook.active:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = p.get_int("offset", 0)
        limit = min(max(p.get_int("limit", 100), 1), 100)
        timeout = min(max(p.get_number("timeout", 0.0), 0.0), self._max_poll_timeout)
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(map(str, allowed)) or None
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_signal.fire()  # an older long poll wakes up and ends with 409
        if offset > 0:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._confirmed.add(self._updates.popleft()["update_id"])
        elif offset < 0:
            while len(self._updates) > -offset:
                self._confirmed.add(self._updates.popleft()["update_id"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:  # each pass waits for a new update; ends by the deadline
            if generation != self._poll_generation:
                raise ApiError(409, CONFLICT)
            batch = self._take_updates(limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                break
            self._poll_waiting += 1
            self._state_signal.fire()
            try:
                await self._updates_signal.wait(remaining)
            finally:
                self._poll_waiting -= 1
        if batch:
            self._delivered_update_id = max(self._delivered_update_id, batch[-1]["update_id"])
            self._fetched.update(u["update_id"] for u in batch)
        return batch

    def _take_updates(self, limit: int) -> list[JSONDict]:
        allowed = self._allowed_updates
        if allowed is None:
            return list(itertools.islice(self._updates, limit))
        batch: list[JSONDict] = []
        for update in self._updates:
            if len(batch) >= limit:
                break
            if any(kind in allowed for kind in update if kind != "update_id"):
                batch.append(update)
        return batch

    async def _send_message(self, p: _Params) -> JSONDict:
        self._require_chat_id(p)
        text, entities = self._formatted(
            p,
            "text",
            "entities",
            limit=MAX_MESSAGE_LENGTH,
            too_long="message is too long",
            required=True,
        )
        markup = self._reply_markup(p)
        chat = self._chat_for(p)
        self._check_can_send(chat)
        reply_to = self._reply_to(chat, p)
        return self._new_message(
            chat,
            BotMessage(
                message_id=chat.next_message_id(),
                chat_id=chat.chat["id"],
                date=int(time.time()),
                text=text,
                entities=entities,
                reply_markup=markup,
                reply_to_message_id=reply_to,
            ),
        )

    def _editable(self, chat: _Chat, message_id: int) -> BotMessage:
        message = chat.bot_messages.get(message_id)
        if message is None or message.deleted:
            if message_id in chat.user_messages:
                raise ApiError.bad("message can't be edited")
            raise ApiError.bad("message to edit not found")
        return message

    @staticmethod
    def _apply_edit(message: BotMessage, **changes: Any) -> None:
        message.history.append(message._snapshot())
        for key, value in changes.items():
            setattr(message, key, value)
        message.edited = True
        message.edit_date = int(time.time())

    async def _edit_message_text(self, p: _Params) -> JSONDict:
        self._require_chat_id(p)
        message_id = self._message_id(p)
        text, entities = self._formatted(
            p,
            "text",
            "entities",
            limit=MAX_MESSAGE_LENGTH,
            too_long="message is too long",
            required=True,
        )
        markup = self._reply_markup(p, inline_only=True)
        chat = self._chat_for(p)
        message = self._editable(chat, message_id)
        if message.text is None:
            raise ApiError.bad("there is no text in the message to edit")
        if (message.text, message.entities, message.reply_markup) == (text, entities, markup):
            raise ApiError.bad(NOT_MODIFIED[len("Bad Request: ") :])
        self._apply_edit(message, text=text, entities=entities, reply_markup=markup)
        return self._message_dict(chat, message)

    async def _edit_message_reply_markup(self, p: _Params) -> JSONDict:
        self._require_chat_id(p)
        message_id = self._message_id(p)
        markup = self._reply_markup(p, inline_only=True)
        chat = self._chat_for(p)
        message = self._editable(chat, message_id)
        if message.reply_markup == markup:
            raise ApiError.bad(NOT_MODIFIED[len("Bad Request: ") :])
        self._apply_edit(message, reply_markup=markup)
        return self._message_dict(chat, message)

    async def _delete_message(self, p: _Params) -> bool:
        chat = self._chat_for(p)
        message_id = self._message_id(p)
        message = chat.bot_messages.get(message_id)
        if message is not None and not message.deleted:
            message.deleted = True
            return True
        if chat.user_messages.pop(message_id, None) is not None:
            return True
        raise ApiError.bad("message to delete not found")

    async def _copy_message(self, p: _Params) -> JSONDict:
        """copyMessage: the message's content, without a link to the original; its new id."""
        chat = self._chat_for(p)
        source_id = p.get("from_chat_id")
        if source_id in (None, ""):
            raise ApiError.bad("from_chat_id is empty")
        source = self._chat_for(_Params({"chat_id": source_id}))
        message_id = self._message_id(p)
        original = source.user_messages.get(message_id)
        bot_message = source.bot_messages.get(message_id)
        if original is None and bot_message is not None and not bot_message.deleted:
            original = self._message_dict(source, bot_message)
        if original is None:
            raise ApiError.bad("message to copy not found")
        kind = (
            "text"
            if "text" in original
            else next((k for k in _COPYABLE_MEDIA if k in original), None)
        )
        if kind is None:
            raise ApiError.bad("message can't be copied")
        caption, caption_entities = original.get("caption"), original.get("caption_entities", [])
        if p.get("caption") is not None:
            caption, caption_entities = self._formatted(
                p,
                "caption",
                "caption_entities",
                limit=MAX_CAPTION_LENGTH,
                too_long="message caption is too long",
                required=False,
            )
        markup = self._reply_markup(p)
        self._check_can_send(chat)
        reply_to = self._reply_to(chat, p)
        media = original.get(kind) if kind != "text" else None
        file_id = None
        if isinstance(media, list) and media:
            file_id = media[-1].get("file_id")
        elif isinstance(media, dict):
            file_id = media.get("file_id")
        copy = BotMessage(
            message_id=chat.next_message_id(),
            chat_id=chat.chat["id"],
            date=int(time.time()),
            kind=kind,
            text=original.get("text"),
            entities=list(original.get("entities", [])),
            caption=caption or None,
            caption_entities=list(caption_entities or []),
            reply_markup=markup,
            file_id=file_id,
            media=media,
            reply_to_message_id=reply_to,
        )
        self._new_message(chat, copy)
        return {"message_id": copy.message_id}

    async def _answer_callback_query(self, p: _Params) -> bool:
        query_id = p.get_str("callback_query_id") or ""
        text = p.get_str("text")
        if text is not None and utf16_len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise ApiError.bad("MESSAGE_TOO_LONG")
        url = p.get_str("url")
        query = self._queries.get(query_id)
        now = asyncio.get_running_loop().time()
        if query is None or now - query.created > self._callback_query_timeout:
            self._queries.pop(query_id, None)
            raise ApiError.bad(QUERY_TOO_OLD[len("Bad Request: ") :])
        del self._queries[query_id]
        self._callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                user_id=query.user_id,
                message_id=query.message_id,
                data=query.data,
                text=text,
                show_alert=p.get_bool("show_alert"),
                url=url,
                cache_time=p.get_int("cache_time", 0),
                latency=now - query.created,
            )
        )
        return True

    @staticmethod
    def _commands_key(scope: Any, language_code: str | None) -> tuple[str, str]:
        if not isinstance(scope, dict):
            scope = {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    def _commands_target(self, p: _Params) -> tuple[str, str]:
        language = p.get_str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError.bad("LANG_CODE_INVALID")
        return self._commands_key(p.get("scope"), language)

    async def _set_my_commands(self, p: _Params) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise ApiError.bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise ApiError.bad("BOT_COMMANDS_TOO_MUCH")
        stored: list[JSONDict] = []
        for item in commands:
            if not isinstance(item, dict):
                raise ApiError.bad("can't parse BotCommand: expected an Object")
            command, description = item.get("command"), item.get("description")
            if not isinstance(command, str):
                raise ApiError.bad("can't parse BotCommand: Can't find field \"command\"")
            if not isinstance(description, str):
                raise ApiError.bad("can't parse BotCommand: Can't find field \"description\"")
            if not _COMMAND_RE.match(command):
                raise ApiError.bad("BOT_COMMAND_INVALID")
            if not description.strip() or len(description) > 256:
                raise ApiError.bad("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": command, "description": description})
        key = self._commands_target(p)
        if stored:
            self._commands[key] = stored
        else:
            self._commands.pop(key, None)
        return True

    async def _get_my_commands(self, p: _Params) -> list[JSONDict]:
        return list(self._commands.get(self._commands_target(p), []))

    async def _delete_my_commands(self, p: _Params) -> bool:
        self._commands.pop(self._commands_target(p), None)
        return True

    async def _send_chat_action(self, p: _Params) -> bool:
        chat = self._chat_for(p)
        if p.get_str("action") not in _CHAT_ACTIONS:
            raise ApiError.bad("wrong parameter action in request")
        self._check_can_send(chat)
        return True

    def _input_file(self, p: _Params, name: str) -> tuple[str | None, UploadedFile | None]:
        """The file argument ``name``: an existing file_id or an upload (also attach://)."""
        value = p.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value[len("attach://") :])
        if isinstance(value, UploadedFile):
            if not value.data:
                raise ApiError.bad("file must be non-empty")
            return None, value
        if not isinstance(value, str) or not value:
            raise ApiError.bad(f"there is no {name} in the request")
        if value in self._files:
            return value, None
        if re.match(r"^https?://", value, re.IGNORECASE):
            raise ApiError.bad("failed to get HTTP URL content")
        raise ApiError.bad("wrong file identifier/HTTP URL specified")

    async def _send_photo(self, p: _Params) -> JSONDict:
        return self._send_media(p, "photo")

    async def _send_document(self, p: _Params) -> JSONDict:
        return self._send_media(p, "document")

    def _send_media(self, p: _Params, kind: str) -> JSONDict:
        """sendPhoto / sendDocument: a file (new upload or known file_id) with a caption."""
        chat = self._chat_for(p)
        file_id, upload = self._input_file(p, kind)
        caption, caption_entities = self._formatted(
            p,
            "caption",
            "caption_entities",
            limit=MAX_CAPTION_LENGTH,
            too_long="message caption is too long",
            required=False,
        )
        markup = self._reply_markup(p)
        size = None
        if kind == "photo":
            size = _image_size(upload.data if upload else self._files[file_id or ""].data)
            if size is None:
                raise ApiError.bad("IMAGE_PROCESS_FAILED")
        self._check_can_send(chat)
        reply_to = self._reply_to(chat, p)
        extra: JSONDict = {}
        if upload is not None:
            file_id = self._store_file(upload.data, f"{kind}s", upload.filename)
            if kind == "document":
                extra = {"file_name": upload.filename, "mime_type": upload.content_type}
        assert file_id is not None
        media: JSONDict | list[JSONDict]
        if size is not None:
            media = [self.file_object(file_id, width=size[0], height=size[1])]
        else:
            media = self.file_object(file_id, **extra)
        return self._new_message(
            chat,
            BotMessage(
                message_id=chat.next_message_id(),
                chat_id=chat.chat["id"],
                date=int(time.time()),
                kind=kind,
                caption=caption or None,
                caption_entities=caption_entities,
                reply_markup=markup,
                file_id=file_id,
                media=media,
                reply_to_message_id=reply_to,
            ),
        )

    async def _get_file(self, p: _Params) -> JSONDict:
        stored = self._files.get(p.get_str("file_id") or "")
        if stored is None:
            raise ApiError.bad("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_SIZE:
            raise ApiError.bad("file is too big")
        return {**self.file_object(stored.file_id), "file_path": stored.file_path}


# ----------------------------------------------------------------------------------------
# Standalone use
# ----------------------------------------------------------------------------------------


async def _serve(port: int, token: str, lifetime: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with FakeBotApi(token=token, port=port) as api:
        print(
            f"fake Bot API: base_url={api.base_url} file_base_url={api.file_base_url}", flush=True
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(lifetime):
                await stop.wait()


def main(argv: Iterable[str] | None = None) -> None:
    """``python -m tests.support.fakebotapi [--port N] [--token T] [--lifetime SECONDS]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-token")
    parser.add_argument(
        "--lifetime", type=float, default=3600.0, help="stop by itself after this many seconds"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    asyncio.run(_serve(args.port, args.token, args.lifetime))


if __name__ == "__main__":
    main()
