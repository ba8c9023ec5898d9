"""Webhook delivery for the fake Bot API, as Telegram does it once setWebhook is called.

* ``setWebhook`` (url, secret_token, max_connections 1-100, allowed_updates,
  drop_pending_updates), ``deleteWebhook``, ``getWebhookInfo``; ``getUpdates`` answers 409
  while a webhook is set, as Telegram does;
* one outstanding update per chat: a chat's next update is POSTed only once the last one was
  answered 200; different chats in parallel, at most ``max_connections`` at once;
* a non-200 answer, a refused connection or no answer within ``timeout`` -> the same update
  again after a short wait (Telegram waits longer), to the next URL;
* the header ``X-Telegram-Bot-Api-Secret-Token`` carries the secret.

Telegram has one URL per bot; behind it a load balancer spreads the requests over instances.
Here, with ``multiple_urls=True``, each setWebhook with a new URL adds it to the round robin
(each instance registers its own address), which models that balancer over two backends.
Plain http:// on 127.0.0.1 is accepted (Telegram requires https on ports 443, 80, 88, 8443).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from tests.support.fakebotapi import FakeBotApi

JSONDict = dict[str, Any]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active;"
    " use deleteWebhook to delete the webhook first"
)


def chat_key(update: JSONDict) -> int:
    """Return the chat an update belongs to (Telegram's order is per chat)."""
    for kind in ("message", "edited_message", "channel_post"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    query = update.get("callback_query")
    if query is not None:
        message = query.get("message")
        if message is not None:
            return int(message["chat"]["id"])
        return int(query["from"]["id"])
    return 0


class WebhookDelivery:
    """POST queued updates of the fake to the registered URL(s), one per chat at a time."""

    def __init__(
        self, api: FakeBotApi, *, multiple_urls: bool, timeout: float, retry_delay: float
    ) -> None:
        self._api = api
        self._multiple = multiple_urls
        self._timeout = timeout
        self._retry_delay = retry_delay
        self.urls: list[str] = []
        self.secret: str | None = None
        self.max_connections = 40
        self._rr = itertools.count()
        self._outstanding: set[int] = set()  # chats with an update on its way
        self._in_flight: set[int] = set()  # update ids being delivered
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.deliveries = 0  # POSTs made
        self.failures = 0  # POSTs not answered 200
        self.last_error: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.urls)

    def set(self, url: str, secret: str | None, max_connections: int) -> None:
        if self._multiple:
            if url not in self.urls:
                self.urls.append(url)
        else:
            self.urls = [url]
        self.secret = secret
        self.max_connections = max_connections
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._run())
        self._api._updates_signal.fire()

    def delete(self) -> None:
        self.urls = []
        self._api._updates_signal.fire()

    def info(self) -> JSONDict:
        info: JSONDict = {
            "url": self.urls[0] if self.urls else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._api._updates),
        }
        if self.urls:
            info["max_connections"] = self.max_connections
            if self._api._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._api._allowed_updates)
        if self.last_error is not None:
            info["last_error_message"] = self.last_error
        return info

    async def close(self) -> None:
        self.urls = []
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        api = self._api
        while self.urls and not api._closing:
            allowed = api._allowed_updates
            for update in list(api._updates):
                if len(self._in_flight) >= self.max_connections:
                    break
                uid = update["update_id"]
                key = chat_key(update)
                if uid in self._in_flight or key in self._outstanding:
                    continue
                if allowed is not None and not any(
                    k in allowed for k in update if k != "update_id"
                ):
                    continue
                # Per chat in order: an earlier update of this chat blocks the later ones.
                self._outstanding.add(key)
                self._in_flight.add(uid)
                task = asyncio.create_task(self._deliver(update, key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await api._updates_signal.wait(1.0)

    async def _deliver(self, update: JSONDict, key: int) -> None:
        api = self._api
        uid = update["update_id"]
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=False)
            )
        headers = {} if self.secret is None else {SECRET_HEADER: self.secret}
        try:
            while self.urls and not api._closing:
                url = self.urls[next(self._rr) % len(self.urls)]
                self.deliveries += 1
                try:
                    async with self._session.post(
                        url,
                        json=dict(update),
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=self._timeout),
                    ) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    status, self.last_error = 0, f"{type(exc).__name__}: {exc}"
                if status == 200:
                    with contextlib.suppress(ValueError):
                        api._updates.remove(update)
                    api._confirmed.add(uid)
                    api._fetched.add(uid)
                    first = (
                        api._updates[0]["update_id"] - 1 if api._updates else api._last_update_id
                    )
                    api._delivered_update_id = max(api._delivered_update_id, first)
                    return
                self.failures += 1
                if status:
                    self.last_error = f"Wrong response from the webhook: {status}"
                await asyncio.sleep(self._retry_delay)
        finally:
            self._in_flight.discard(uid)
            self._outstanding.discard(key)
            api._touch()
            api._updates_signal.fire()
