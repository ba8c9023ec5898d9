"""The Telegram transport: python-telegram-bot's Bot API requests made with aiohttp.

It implements PTB's public `telegram.request.BaseRequest`, mirroring `HTTPXRequest` (same
defaults, timeouts, pool and error mapping), because httpx/httpcore spend about 2 ms of CPU
per Bot API call, the bot's limit on two cores (README, "Benchmarks").
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import IO, Any
from urllib.request import getproxies

import aiohttp
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.errors import BotError

logger = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
DOWNLOAD_CHUNK = 64 * 1024
# What urllib.parse.urlencode (quote_plus) writes for each byte of a UTF-8 parameter.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_ESCAPES = {
    b: chr(b) if b in _UNRESERVED else "+" if b == 0x20 else f"%{b:02X}" for b in range(256)
}
# The form `AiohttpRequest.call` made, for the do_request that BaseRequest.post calls from it
# (in the same task, so concurrent calls each see their own).
_CALL_FORM: ContextVar[bytes | None] = ContextVar("call_form", default=None)


class TooLarge(BotError):
    """A download went over its size limit and was stopped."""


POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. "
    "Request was *not* sent to Telegram. Consider adjusting the connection "
    "pool size or the pool timeout."
)


def _or_default(given: object, default: float | None) -> float | None:
    """Return the timeout asked for, or ours when the caller left it at PTB's default marker.

    PTB documents comparing with `BaseRequest.DEFAULT_NONE` (its private `DefaultValue` class
    is what HTTPXRequest checks); anything else that is not a number is a default marker too.
    """
    if given is BaseRequest.DEFAULT_NONE:
        return default
    if given is None:
        return None
    if isinstance(given, int | float) and not isinstance(given, bool):
        return float(given)
    return default


def _sum(*timeouts: float | None) -> float | None:
    """None (no limit) if any is None."""
    total = 0.0
    for timeout in timeouts:
        if timeout is None:
            return None
        total += timeout
    return total


class AiohttpRequest(BaseRequest):
    """Bot API requests over one aiohttp session with at most `connection_pool_size` at once.

    Timeouts, as in HTTPXRequest: `pool_timeout` to get one of the connections (else TimedOut,
    nothing sent), `connect_timeout` to open one, `read_timeout` between two reads of the
    response. aiohttp cannot time a socket write, so `write_timeout` bounds the time from
    sending the request to its response's headers, together with the other two: a deadline of
    connect + write + read (none if any is None). Uploads get `media_write_timeout`.
    An HTTP proxy is taken from the environment (HTTPS_PROXY, NO_PROXY…) as httpx does.
    """

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_slots",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(connection_pool_size)

    @property
    def read_timeout(self) -> float | None:
        """See BaseRequest.read_timeout."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (again, after a shutdown)."""
        if self._session is not None and not self._session.closed:
            return
        self._slots = asyncio.Semaphore(self._pool_size)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool_size),
            headers={"User-Agent": self.USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none
            timeout=aiohttp.ClientTimeout(total=None),  # per request, in do_request
            # Reading proxies from the environment costs aiohttp two thread hops per request:
            # only when one is set.
            trust_env=any(scheme in getproxies() for scheme in ("http", "https")),
        )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is None or self._session.closed:
            return
        await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See BaseRequest.do_request: the status code and the body of the response."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")

        files = request_data.multipart_data if request_data else None
        read = _or_default(read_timeout, self._read_timeout)
        connect = _or_default(connect_timeout, self._connect_timeout)
        pool = _or_default(pool_timeout, self._pool_timeout)
        write = _or_default(
            write_timeout, self._media_write_timeout if files else self._write_timeout
        )
        deadline = _sum(connect, write, read)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
        body = _body(request_data, files) if request_data is not None else _call_body()

        await self._take_slot(pool)
        try:
            async with asyncio.timeout(deadline):  # until the response's headers
                response = await session.request(method, url, data=body, timeout=timeout)
            try:
                payload = await response.read()  # sock_read applies to each read
            finally:
                response.release()
        except TimeoutError as exc:  # ours, and aiohttp's (they subclass it)
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            # The class name helps when the message is empty; aiohttp puts URLs (the token)
            # in some messages.
            message = str(exc).replace(url, "<url>")
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {message}") from exc
        finally:
            self._slots.release()
        return response.status, payload

    async def call(self, url: str, fields: Mapping[str, str]) -> Any:
        """POST a Bot API method whose parameters are strings already; return its result.

        Bot.send_message and the like turn their keyword arguments into PTB objects and a
        RequestData, and the response into a Message: for the two or three calls of every
        update about 0.2 ms of CPU that the channel, which needs a message id at most, does
        without. The request, its timeouts and its errors (TelegramError and subclasses) are
        BaseRequest.post's, as for any other call; the form reaches do_request beside it.
        """
        token = _CALL_FORM.set(form_encoded(fields))
        try:
            return await self.post(url)
        finally:
            _CALL_FORM.reset(token)

    async def download(self, url: str, limit: int) -> bytes:
        """GET a file, giving up as soon as it is over `limit` bytes (raises TooLarge).

        PTB's File.download_* read the whole file first; a file whose metadata has no size
        would be downloaded in full before it could be refused.
        """
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        connect, read = self._connect_timeout, self._read_timeout
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
        await self._take_slot(self._pool_timeout)
        try:
            async with asyncio.timeout(_sum(connect, self._write_timeout, read)):
                response = await session.get(url, timeout=timeout)
            try:
                if response.status != 200:
                    raise NetworkError(f"download failed: HTTP {response.status}")
                size = response.content_length
                if size is not None and size > limit:
                    raise TooLarge(f"{size} bytes > {limit}")
                data = bytearray()
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise TooLarge(f"more than {limit} bytes")
            finally:
                response.close()  # a body not read to its end closes its connection
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            message = str(exc).replace(url, "<url>")
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {message}") from exc
        finally:
            self._slots.release()
        return bytes(data)

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:  # PTB's JSONDict
        """Parse a response; one debug line (not PTB's ERROR with a traceback) if it is no JSON.

        A non-JSON body comes from something that is not the Bot API (a wrong path in
        TELEGRAM_API_BASE_URL, a proxy's error page); the caller reports the failure once.
        """
        try:
            parsed = json.loads(payload.decode("utf-8", "replace"))
        except ValueError:
            logger.debug("not a Bot API response: %r", payload[:200])
            raise TelegramError("Invalid server response") from None
        if not isinstance(parsed, dict):
            raise TelegramError("Invalid server response")
        return parsed

    async def _take_slot(self, pool_timeout: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # returns at once
            return
        try:
            async with asyncio.timeout(pool_timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise TimedOut(POOL_TIMEOUT_MESSAGE) from exc


# The shape of RequestData.multipart_data (PTB's private UploadFileDict): part name ->
# (file name, content, MIME type).
Files = dict[str, tuple[str, bytes | IO[bytes], str]]


def _body(
    request_data: RequestData | None, files: Files | None
) -> aiohttp.FormData | aiohttp.BytesPayload | None:
    """Send parameters as a form and files as multipart, the way HTTPXRequest does."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    if files:
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        for name, (filename, content, mimetype) in files.items():
            # aiohttp streams a file object; big raw bytes would block the event loop.
            stream = io.BytesIO(content) if isinstance(content, bytes) else content
            form.add_field(name, stream, filename=filename, content_type=mimetype)
        return form
    if not fields:
        return None
    return aiohttp.BytesPayload(form_encoded(fields), content_type=FORM)


def _call_body() -> aiohttp.BytesPayload | None:
    form = _CALL_FORM.get()
    return None if form is None else aiohttp.BytesPayload(form, content_type=FORM)


def form_encoded(fields: Mapping[str, str]) -> bytes:
    """Return urllib.parse.urlencode(fields), encoded, at half its CPU (a table, not a loop)."""
    return "&".join(
        f"{_quote_plus(name)}={_quote_plus(value)}" for name, value in fields.items()
    ).encode("ascii")


def _quote_plus(text: str) -> str:
    return text.encode("utf-8").decode("latin-1").translate(_FORM_ESCAPES)
