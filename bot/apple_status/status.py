"""Compatibility: the names bot.apple_status.status had before it was split.

New code imports bot.apple_status.report (pure: parsing, rendering, subscriptions),
bot.apple_status.feed (HTTP and cache) or bot.content.status_map (knowledge/status.yaml).
This module only keeps branches written against the old path working until they are merged;
it can go once nothing imports it.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.apple_status.feed import (
    CACHE_SECONDS,
    DEFAULT_TIMEOUT,
    LOCALE_PLACEHOLDER,
    MAX_BYTES,
    FeedError,
    StatusFeed,
    feed_url,
)
from bot.apple_status.report import (
    PROBLEM_TYPES,
    STATUS_FIX,
    SUBSCRIPTION_MAX_AGE,
    Incident,
    Relevant,
    ServiceStatus,
    StatusEvent,
    StatusReport,
    Subscription,
    Verdict,
    fold_name,
    format_time,
    parse_feed,
    relevant,
    status_html,
    still_broken,
    verdict,
)
from bot.content.languages import LANGUAGES
from bot.content.status_map import ServiceMap, load_service_map

FEED_LOCALES: Mapping[str, str] = {row.code: row.feed_locale for row in LANGUAGES}

__all__ = [
    "CACHE_SECONDS",
    "DEFAULT_TIMEOUT",
    "FEED_LOCALES",
    "LOCALE_PLACEHOLDER",
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
