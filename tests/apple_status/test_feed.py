"""Fetching Apple's System Status: the cached fetch, its settings, notifications end to end.

Feeds are served by a small HTTP server on 127.0.0.1 from tests/data/status/ (JSONP, garbage,
errors and slowness are produced by the server itself: tests/support/status_feeds.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.apple_status.feed import CACHE_SECONDS, DEFAULT_TIMEOUT, StatusFeed, feed_url
from bot.config import DEFAULT_STATUS_URL, MIN_STATUS_POLL_SECONDS, Settings
from bot.conversation.events import Context
from bot.errors import ConfigError
from tests.support.botproc import BotProcess
from tests.support.fakebotapi import BotMessage, CallbackAnswer, FakeBotApi
from tests.support.status_feeds import FeedServer, report, sample

EN = Context(now=1000.0, language_code="en")
JA = Context(now=1000.0, language_code="ja")
MAIL_EN = "iCloud Mail is not working"
OUTAGE_START_UTC = "2026-01-01 08:00 UTC"  # epochStartDate 1767254400000 in the samples
OUTAGE_START_JST = "2026/01/01 17:00"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- fetching


def test_defaults_are_three_seconds_and_one_minute() -> None:
    assert DEFAULT_TIMEOUT == 3.0
    assert CACHE_SECONDS == 60.0
    feed = StatusFeed(DEFAULT_STATUS_URL)
    assert feed.timeout == 3.0 and feed.ttl == 60.0
    assert feed_url(DEFAULT_STATUS_URL, "ja") == (
        "https://www.apple.com/support/systemstatus/data/system_status_ja_JP.js"
    )
    assert feed_url(DEFAULT_STATUS_URL, "en").endswith("/system_status_en_US.js")
    assert feed_url(DEFAULT_STATUS_URL, "fr").endswith("/system_status_en_US.js")


async def test_fetch_each_language_from_its_own_feed(feeds: FeedServer) -> None:
    feeds.scenario = "mail_outage"
    feed = StatusFeed(feeds.template)
    en, ja = await feed.get("en"), await feed.get("ja")
    assert en == report("mail_outage", "en_US")
    assert ja == report("mail_outage", "ja_JP")
    assert feeds.hits == {"en_US": 1, "ja_JP": 1}


async def test_fetch_jsonp(feeds: FeedServer) -> None:
    feeds.mode = "jsonp"
    assert await StatusFeed(feeds.template).get("en") == report("normal")


async def test_cache_is_shared_for_a_minute(feeds: FeedServer) -> None:
    clock = Clock()
    feed = StatusFeed(feeds.template, clock=clock)
    first = await feed.get("en")
    clock.now += 59.0
    feeds.scenario = "mail_outage"  # changed on the server, but the cache is still fresh
    assert await feed.get("en") == first == report("normal")
    assert feeds.hits == {"en_US": 1}
    clock.now += 1.0
    assert await feed.get("en") == report("mail_outage")
    assert feeds.hits == {"en_US": 2}


async def test_concurrent_users_share_one_request(feeds: FeedServer) -> None:
    feed = StatusFeed(feeds.template, clock=Clock())
    results = await asyncio.gather(*(feed.get("en") for _ in range(20)))
    assert all(r == report("normal") for r in results)
    assert feeds.hits == {"en_US": 1} and feed.requests == 1


@pytest.mark.parametrize("mode", ["garbage", "unexpected", "error"])
async def test_bad_answers_become_none_with_a_warning(
    feeds: FeedServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    feeds.mode = mode
    with caplog.at_level(logging.WARNING, logger="bot.apple_status.feed"):
        assert await StatusFeed(feeds.template).get("en") is None
    assert any("Apple status feed" in r.getMessage() for r in caplog.records)


async def test_slow_feed_times_out(feeds: FeedServer, caplog: pytest.LogCaptureFixture) -> None:
    feeds.mode = "slow"
    feed = StatusFeed(feeds.template, timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="bot.apple_status.feed"):
        assert await feed.get("en") is None
    assert any("no answer within 0.2 s" in r.getMessage() for r in caplog.records)


async def test_unreachable_feed_is_none_and_the_failure_is_cached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FeedServer() as server:
        template = server.template  # the port is closed once the server is gone
    clock = Clock()
    feed = StatusFeed(template, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bot.apple_status.feed"):
        assert await feed.get("en") is None
        assert await feed.get("en") is None
    assert feed.requests == 1  # an unreachable feed costs one attempt per minute, not per user
    clock.now += CACHE_SECONDS
    assert await feed.get("en") is None
    assert feed.requests == 2
    assert any("unavailable" in r.getMessage() for r in caplog.records)


async def test_oversized_body_is_refused(
    monkeypatch: pytest.MonkeyPatch, feeds: FeedServer
) -> None:
    monkeypatch.setattr("bot.apple_status.feed.MAX_BYTES", 1000)
    assert await StatusFeed(feeds.template).get("en") is None


# --------------------------------------------------------------------------- configuration


def settings(**env: str) -> Settings:
    return Settings.from_env(env, need_token=False)


def test_status_settings_defaults() -> None:
    s = settings()
    assert s.status_url == DEFAULT_STATUS_URL
    assert "{locale}" in DEFAULT_STATUS_URL
    assert s.status_poll_seconds == MIN_STATUS_POLL_SECONDS == 60.0


def test_status_settings_off_and_custom() -> None:
    assert settings(APPLE_STATUS_URL="off").status_url is None
    assert settings(APPLE_STATUS_URL="OFF").status_url is None
    local = "http://127.0.0.1:8080/status_{locale}.json"
    s = settings(APPLE_STATUS_URL=local, APPLE_STATUS_POLL_SECONDS="0.5")
    assert s.status_url == local and s.status_poll_seconds == 0.5
    assert settings(APPLE_STATUS_POLL_SECONDS="300").status_poll_seconds == 300.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APPLE_STATUS_URL": "ftp://example.com/{locale}"}, "APPLE_STATUS_URL"),
        ({"APPLE_STATUS_POLL_SECONDS": "soon"}, "APPLE_STATUS_POLL_SECONDS"),
        ({"APPLE_STATUS_POLL_SECONDS": "0"}, "APPLE_STATUS_POLL_SECONDS"),
        ({"APPLE_STATUS_POLL_SECONDS": "nan"}, "APPLE_STATUS_POLL_SECONDS"),
        ({"APPLE_STATUS_POLL_SECONDS": "inf"}, "APPLE_STATUS_POLL_SECONDS"),
        # Apple is asked at most once a minute; shorter is for test servers and mirrors only.
        ({"APPLE_STATUS_POLL_SECONDS": "59"}, "at least 60"),
        (
            {
                "APPLE_STATUS_URL": "https://www.apple.com/x_{locale}.js",
                "APPLE_STATUS_POLL_SECONDS": "1",
            },
            "at least 60",
        ),
    ],
)
def test_status_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(**env)


# --------------------------------------------------------------------------- end to end


async def newest_with(api: FakeBotApi, user: int, needle: str, timeout: float = 15.0) -> BotMessage:
    def find() -> BotMessage | None:
        for message in reversed(api.chat(user)):
            if needle in (message.text or ""):
                return message
        return None

    found: BotMessage = await api.wait_for(find, timeout, what=f"a message with {needle!r}")
    return found


async def eventually(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Wait for a condition outside the fake Bot API (the feed server, the database)."""
    step = 0.05
    for _ in range(int(timeout / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def tap(api: FakeBotApi, user: int, label: str) -> CallbackAnswer:
    """Tap the newest button containing label; return the callback answer."""
    for message in reversed(api.chat(user)):
        for text in message.button_texts:
            if label in text:
                before = len(api.callback_answers)
                api.push_button(user, text, message_id=message.message_id, language_code="en")
                await api.wait_for(
                    lambda n=before: len(api.callback_answers) > n, what="callback answer"
                )
                await api.wait_idle()
                return api.callback_answers[-1]
    raise AssertionError(f"no button {label!r}: {[m.button_texts for m in api.chat(user)]}")


def fixed_sent(api: FakeBotApi, user: int) -> int:
    """How many "Apple fixed it" messages the bot sent to the user (edited later or not)."""
    return sum(
        1
        for r in api.calls("sendMessage")
        if r.params.get("chat_id") in (user, str(user))
        and "working again" in str(r.params.get("text", ""))
    )


def subscriptions(db: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT user_id, chat_id, lang, entry, device, services FROM status_subscriptions"
        ).fetchall()


async def open_mail_step(api: FakeBotApi, user: int) -> BotMessage:
    api.push_text(user, MAIL_EN, language_code="en")
    await newest_with(api, user, "Which device")
    await tap(api, user, "iPhone")
    return await newest_with(api, user, "Step 1/")


def live_bot(api: FakeBotApi, tmp_path: Path, feeds: FeedServer) -> BotProcess:
    return BotProcess(
        api, tmp_path, APPLE_STATUS_URL=feeds.template, APPLE_STATUS_POLL_SECONDS="0.3"
    )


@pytest.mark.slow
async def test_e2e_outage_notify_then_fixed_once(
    api: FakeBotApi, tmp_path: Path, feeds: FeedServer
) -> None:
    user = 4001
    feeds.scenario = "mail_outage"
    async with live_bot(api, tmp_path, feeds) as bot:
        step = await open_mail_step(api, user)
        text = step.text or ""
        assert "Outage" in text and "iCloud Mail" in text and OUTAGE_START_UTC in text
        assert "most likely the cause" in text
        assert any(
            b.get("url") == "https://www.apple.com/support/systemstatus/" for b in step.buttons
        )

        answer = await tap(api, user, "Notify me")
        assert "message you" in (answer.text or "") and not answer.show_alert
        assert subscriptions(bot.db_path) == [
            (user, user, "en", "mail_not_working", "iphone", '["iCloud Mail"]')
        ]
        polls = feeds.total_hits
        await eventually(lambda: feeds.total_hits > polls + 2, "a few polls of the feed")
        assert not any("working again" in (m.text or "") for m in api.chat(user))

        feeds.scenario = "mail_resolved"
        fixed = await newest_with(api, user, "working again")
        assert "iCloud Mail" in (fixed.text or "")
        assert fixed.message_id != step.message_id
        # The message carries on with the walk where it stopped.
        await tap(api, user, "Next fix")
        assert "Step 2/" in (api.chat(user)[-1].text or "")
    assert subscriptions(bot.db_path) == []
    assert fixed_sent(api, user) == 1
    assert api.errors == []


@pytest.mark.slow
async def test_e2e_subscription_survives_a_restart(
    api: FakeBotApi, tmp_path: Path, feeds: FeedServer
) -> None:
    user = 4002
    feeds.scenario = "mail_outage"
    bot = await live_bot(api, tmp_path, feeds).start()
    await open_mail_step(api, user)
    await tap(api, user, "Notify me")
    polls = feeds.total_hits
    await eventually(lambda: feeds.total_hits > polls, "a poll of the feed")
    assert await bot.stop() == 0  # the poller stops with the bot, cleanly
    assert len(subscriptions(bot.db_path)) == 1

    feeds.scenario = "mail_resolved"  # fixed while the bot was down
    async with bot:
        await newest_with(api, user, "working again")
    assert subscriptions(bot.db_path) == []
    assert fixed_sent(api, user) == 1


@pytest.mark.slow
async def test_e2e_blocked_subscriber_is_dropped(
    api: FakeBotApi, tmp_path: Path, feeds: FeedServer
) -> None:
    user = 4003
    feeds.scenario = "mail_outage"
    async with live_bot(api, tmp_path, feeds) as bot:
        await open_mail_step(api, user)
        await tap(api, user, "Notify me")
        api.block(user)
        feeds.scenario = "mail_resolved"
        await eventually(lambda: not subscriptions(bot.db_path), "the subscription dropped")
    assert not any("working again" in (m.text or "") for m in api.chat(user))
    assert fixed_sent(api, user) == 1  # refused with 403, and not tried again
    # The outbox drops what Telegram refuses for good, with one line naming the chat.
    assert bot.log().count(f"dropped a send to chat {user}: Forbidden") == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["down", "garbage", "unexpected", "error", "slow"])
async def test_e2e_step_falls_back_when_the_feed_fails(
    api: FakeBotApi, tmp_path: Path, feeds: FeedServer, mode: str
) -> None:
    user = 4004
    if mode == "down":
        async with FeedServer() as gone:
            template = gone.template
    else:
        feeds.mode = mode
        template = feeds.template
    env = {"APPLE_STATUS_URL": template, "APPLE_STATUS_POLL_SECONDS": "0.3"}
    async with BotProcess(api, tmp_path, **env) as bot:
        step = await open_mail_step(api, user)
        text = step.text or ""
        assert "Open Apple's System Status page with the button below." in text
        assert "Apple System Status right now" not in text
        assert not any("Notify" in b for b in step.button_texts)
        assert any(
            b.get("url") == "https://www.apple.com/support/systemstatus/" for b in step.buttons
        )
        await tap(api, user, "Next fix")  # the walk goes on
        assert "Step 2/" in (api.chat(user)[-1].text or "")
    assert "Apple status feed" in bot.log()
    assert api.errors == []


@pytest.mark.slow
async def test_e2e_odd_start_time_still_answers_the_step(
    api: FakeBotApi, tmp_path: Path, feeds: FeedServer
) -> None:
    """An ongoing outage whose epochStartDate is NaN: the step answers, without a time."""
    user = 4005
    doc = json.loads(sample("mail_outage"))
    mail = next(s for s in doc["services"] if s["serviceName"] == "iCloud Mail")
    mail["events"][0].update(epochStartDate=float("nan"), startDate=None)
    feeds.body = json.dumps(doc)  # NaN, as JavaScript's JSON would carry it
    async with live_bot(api, tmp_path, feeds):
        step = await open_mail_step(api, user)
        text = step.text or ""
        assert "Apple System Status right now" in text and "Outage" in text
        assert "Users may be unable to access iCloud Mail." in text
        assert OUTAGE_START_UTC not in text and " since " not in text
        assert any("Notify" in b for b in step.button_texts)
    assert api.errors == []
