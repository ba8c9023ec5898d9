"""Apple's System Status feed: parse it, pick the services that matter, fetch it with a cache.

Apple publishes the state of its services at
`https://www.apple.com/support/systemstatus/data/system_status_{locale}.js`, where `{locale}`
is `en_US` or `ja_JP` (`FEED_LOCALES`). The body is JSON, sometimes wrapped as JSONP
(`jsonCallback({...});`): `services[]` with `serviceName` and `events[]`, each event with
`statusType` (Available, Outage, Issue, Performance, Maintenance), `eventStatus` (ongoing,
resolved, upcoming, completed), `message`, `startDate`, `endDate` and, usually,
`epochStartDate` (milliseconds).

The pure part (parsing, what matters, rendering, subscriptions, the service map) is in
`bot/apple_status/report.py` and re-exported here. This module holds `StatusFeed`, which
fetches over HTTP with a 3-second deadline, never raises (any failure is logged as a warning
and becomes None) and caches every answer, success or failure, for 60 seconds, shared by all
users.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import httpx

from bot.apple_status.report import (
    PROBLEM_TYPES,
    STATUS_FIX,
    SUBSCRIPTION_MAX_AGE,
    Incident,
    Relevant,
    ServiceMap,
    ServiceStatus,
    StatusEvent,
    StatusReport,
    Subscription,
    Verdict,
    fold_name,
    format_time,
    load_service_map,
    parse_feed,
    relevant,
    status_html,
    still_broken,
    verdict,
)
from bot.errors import BotError

__all__ = [
    "CACHE_SECONDS",
    "DEFAULT_TIMEOUT",
    "FEED_LOCALES",
    "MAX_BYTES",
    "PROBLEM_TYPES",
    "STATUS_FIX",
    "SUBSCRIPTION_MAX_AGE",
    "FeedError",
    "Incident",
    "Relevant",
    "ServiceMap",
    "ServiceStatus",
    "StatusEvent",
    "StatusFeed",
    "StatusReport",
    "Subscription",
    "Verdict",
    "feed_url",
    "fold_name",
    "format_time",
    "load_service_map",
    "parse_feed",
    "relevant",
    "status_html",
    "still_broken",
    "verdict",
]

logger = logging.getLogger(__name__)

FEED_LOCALES: Mapping[str, str] = {"en": "en_US", "ja": "ja_JP"}  # fills `{locale}` in the URL
LOCALE_PLACEHOLDER = "{locale}"
DEFAULT_TIMEOUT = 3.0  # seconds for the whole request: connect, send, read
CACHE_SECONDS = 60.0  # how long one answer (or failure) serves every user
MAX_BYTES = 2_000_000  # Apple's feed is ~50-200 kB; anything far bigger is not the feed


class FeedError(BotError):
    """The status feed could not be used (too large, not text)."""


# --------------------------------------------------------------------------- fetching


def feed_url(template: str, lang: str) -> str:
    """Fill the feed's locale into the URL template (`{locale}` → en_US or ja_JP)."""
    return template.replace(LOCALE_PLACEHOLDER, FEED_LOCALES.get(lang, FEED_LOCALES["en"]))


class StatusFeed:
    """Fetch the feed per language; cache each answer; never raise.

    Concurrent callers for the same language share one request. A failure is cached like a
    success, so an unreachable feed costs one timeout per `ttl`, not one per user.
    """

    def __init__(
        self,
        url_template: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url_template = url_template
        self.timeout = timeout
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, StatusReport | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.requests = 0  # how many fetches went out (for tests and logs)

    async def get(self, lang: str) -> StatusReport | None:
        """Return the report in this language, from the cache when it is fresh enough."""
        locale = FEED_LOCALES.get(lang, FEED_LOCALES["en"])
        async with self._locks.setdefault(locale, asyncio.Lock()):
            cached = self._cache.get(locale)
            if cached is not None and self._clock() < cached[0]:
                return cached[1]
            report = await self._fetch(feed_url(self.url_template, lang))
            self._cache[locale] = (self._clock() + self.ttl, report)
            return report

    async def _fetch(self, url: str) -> StatusReport | None:
        self.requests += 1
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._download(url)
        except TimeoutError:
            logger.warning("Apple status feed %s: no answer within %.1f s", url, self.timeout)
            return None
        except httpx.HTTPStatusError as exc:
            logger.warning("Apple status feed %s: HTTP %s", url, exc.response.status_code)
            return None
        except Exception as exc:  # any failure means "status unknown", never a broken walk
            logger.warning("Apple status feed %s unavailable: %r", url, exc)
            return None
        report = parse_feed(body)
        if report is None:
            logger.warning("Apple status feed %s: not a status feed (%d bytes)", url, len(body))
        return report

    async def _download(self, url: str) -> bytes:
        async with (
            httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            response.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise FeedError(f"larger than {MAX_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
