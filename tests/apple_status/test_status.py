"""Apple's System Status: parsing, the cached fetch, the status step, notifications end to end.

Feeds are served by a small HTTP server on 127.0.0.1 from tests/data/status/
(<scenario>.<locale>.json, shaped like Apple's real feed); JSONP, garbage, errors and
slowness are produced by the server itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import build_engine
from bot.apple_status.status import (
    CACHE_SECONDS,
    DEFAULT_TIMEOUT,
    STATUS_FIX,
    SUBSCRIPTION_MAX_AGE,
    ServiceStatus,
    StatusEvent,
    StatusFeed,
    StatusReport,
    Subscription,
    Verdict,
    feed_url,
    load_service_map,
    parse_feed,
    relevant,
    still_broken,
    verdict,
)
from bot.config import DEFAULT_STATUS_URL, MIN_STATUS_POLL_SECONDS, Settings
from bot.content.knowledge import Device
from bot.conversation.callbacks import MAX_BYTES, Action, Callback
from bot.conversation.engine import Context, Engine, Reply, Subscribe, Tap, Text
from bot.conversation.state import UserState
from bot.errors import ConfigError, KnowledgeError
from tests.support.botproc import BotProcess
from tests.support.fakebotapi import BotMessage, CallbackAnswer, FakeBotApi
from tests.support.paths import DATA, ROOT
from tests.support.replies import button as button_data
from tests.support.replies import labels

STATUS_DATA = DATA / "status"
EN = Context(now=1000.0, language_code="en")
JA = Context(now=1000.0, language_code="ja")
MAIL_EN = "iCloud Mail is not working"
OUTAGE_START_UTC = "2026-01-01 08:00 UTC"  # epochStartDate 1767254400000 in the samples
OUTAGE_START_JST = "2026/01/01 17:00"


def sample(scenario: str, locale: str = "en_US") -> str:
    return (STATUS_DATA / f"{scenario}.{locale}.json").read_text(encoding="utf-8")


def report(scenario: str, locale: str = "en_US") -> StatusReport:
    parsed = parse_feed(sample(scenario, locale))
    assert parsed is not None
    return parsed


def one_service(name: str, *events: StatusEvent) -> StatusReport:
    return StatusReport((ServiceStatus(name, events), ServiceStatus("Apple Music")))


def event(status_type: str = "Outage", event_status: str = "ongoing", **kw: Any) -> StatusEvent:
    return StatusEvent(status_type, event_status, **kw)


# --------------------------------------------------------------------------- the feed server


class FeedServer:
    """Serve sample feeds on 127.0.0.1; `mode` and `scenario` can change between requests."""

    def __init__(self) -> None:
        self.scenario = "normal"
        self.mode = "json"  # json, jsonp, garbage, unexpected, error, slow
        self.hits: dict[str, int] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/support/systemstatus/data/system_status_{{locale}}.js"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        locale = name.removeprefix("system_status_").removesuffix(".js")
        self.hits[locale] = self.hits.get(locale, 0) + 1
        if self.mode == "slow":
            await self._release.wait()  # far longer than any timeout; released on close
        if self.mode == "error":
            return web.Response(status=503, text="Service Unavailable")
        if self.mode == "garbage":
            return web.Response(text="<html><body>Oops</body></html>", content_type="text/html")
        if self.mode == "unexpected":
            return web.json_response({"status": "ok", "services": {"iCloud Mail": "green"}})
        body = sample(self.scenario, locale)
        if self.mode == "jsonp":
            body = f"jsonCallback({body});"
        return web.Response(text=body, content_type="application/javascript")

    async def __aenter__(self) -> FeedServer:
        app = web.Application()
        app.router.add_get("/support/systemstatus/data/{name}", self._feed)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- parsing


def test_parse_all_normal() -> None:
    r = report("normal")
    assert len(r.services) == 12
    assert [s.name for s in r.find(["iCloud Mail"])] == ["iCloud Mail"]
    music = r.find(["apple music"])[0]  # names compare without case
    assert [(e.status_type, e.event_status, e.ongoing) for e in music.events] == [
        ("Performance", "resolved", False)
    ]
    found = relevant(r, ["iCloud Mail", "Apple Music"])
    assert found is not None and found.incidents == () and found.problems == ()


def test_parse_ongoing_icloud_mail_outage() -> None:
    r = report("mail_outage")
    [mail] = r.find(["iCloud Mail"])
    [outage] = mail.events
    assert outage.ongoing and outage.problem
    assert outage.message == "Users may be unable to access iCloud Mail."
    assert outage.start == "01/01/2026 00:00 PST"
    assert outage.started_at == 1767254400.0
    assert outage.end is None
    found = relevant(r, ["iCloud Mail", "iCloud Drive"])
    assert found is not None
    assert found.services == ("iCloud Drive", "iCloud Mail")
    assert found.problem_services == ("iCloud Mail",)
    assert still_broken(r, ["iCloud Mail"]) is True
    assert still_broken(r, ["iCloud Drive"]) is False


def test_parse_resolved() -> None:
    r = report("mail_resolved")
    [mail] = r.find(["iCloud Mail"])
    [outage] = mail.events
    assert outage.event_status == "resolved" and not outage.ongoing
    assert outage.end == "01/01/2026 02:15 PST"
    assert still_broken(r, ["iCloud Mail"]) is False


def test_parse_japanese_feed_names_services_in_japanese() -> None:
    r = report("mail_outage", "ja_JP")
    assert r.find(["iCloud Mail"]) == ()
    [mail] = r.find(["iCloudメール"])
    assert mail.events[0].message == "iCloudメールを利用できない可能性があります。"


@pytest.mark.parametrize(
    "wrap",
    [
        "jsonCallback({});",
        "jsonCallback({})",
        "  jsonCallback( {} );\n",
        "window.cb.status({});",
        "\ufeff{}",
    ],
)
def test_parse_jsonp_and_bom(wrap: str) -> None:
    body = sample("mail_outage")
    parsed = parse_feed(wrap.replace("{}", body, 1))
    assert parsed == report("mail_outage")
    assert parse_feed(wrap.replace("{}", body, 1).encode("utf-8")) == report("mail_outage")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "<html><body>Service Unavailable</body></html>",
        sample("normal")[:500],  # truncated
        "jsonCallback(" + sample("normal"),  # no closing parenthesis
        b"\xff\xfe\x00garbage",
        "[" * 100_000,  # deeply nested
    ],
)
def test_parse_malformed_is_none(body: str | bytes) -> None:
    assert parse_feed(body) is None


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"services": {}},
        {"services": "iCloud Mail"},
        {"services": []},
        {"status": "ok"},
        {"services": [1, "two", None, {"events": []}, {"serviceName": "", "events": []}]},
        {"services": [{"serviceName": "iCloud Mail", "events": "none"}]},
        "services",
        None,
    ],
)
def test_parse_unexpected_shape_is_none(doc: Any) -> None:
    assert parse_feed(json.dumps(doc)) is None


def test_parse_skips_what_it_cannot_read_and_keeps_the_rest() -> None:
    doc = {
        "services": [
            "not a service",
            {"serviceName": "iCloud Mail", "events": None},
            {
                "serviceName": "  iCloud Drive ",
                "events": [
                    "not an event",
                    {"statusType": "Issue"},  # no eventStatus: cannot tell if ongoing
                    {
                        "statusType": "Issue",
                        "eventStatus": "ongoing",
                        "message": 42,
                        "epochStartDate": True,
                        "messageId": 7,
                    },
                ],
            },
        ]
    }
    parsed = parse_feed(json.dumps(doc))
    assert parsed is not None
    assert [s.name for s in parsed.services] == ["iCloud Mail", "iCloud Drive"]
    [drive_event] = parsed.services[1].events
    assert drive_event == StatusEvent("Issue", "ongoing", "", "", None, None, "7")


def test_relevant_lists_one_event_once_with_every_service_it_affects() -> None:
    shared = event("Issue", message="Sign-in may fail.", message_id="9")
    r = StatusReport(
        (
            ServiceStatus("iCloud Account & Sign In", (shared,)),
            ServiceStatus("iCloud Drive", (shared, event("Maintenance", message="Upgrade"))),
            ServiceStatus("Photos", (event("Outage", "resolved"),)),
        )
    )
    found = relevant(r, ["iCloud Account & Sign In", "iCloud Drive", "Photos"])
    assert found is not None
    assert [(i.services, i.event.status_type) for i in found.incidents] == [
        (("iCloud Account & Sign In", "iCloud Drive"), "Issue"),
        (("iCloud Drive",), "Maintenance"),
    ]
    assert found.problem_services == ("iCloud Account & Sign In", "iCloud Drive")


def test_names_match_across_width_case_and_spaces() -> None:
    r = one_service("iCloud ストレージアップグレード")
    assert r.find(["ICLOUDストレージアップグレード"]) == (r.services[0],)
    assert relevant(r, ["Nothing Like It"]) is None
    assert still_broken(r, ["Nothing Like It"]) is None


def test_verdict() -> None:
    sub = Subscription(1, 1, "en", "mail_not_working", Device.IPHONE, ("iCloud Mail",), 1000.0)
    assert verdict(sub, report("mail_outage"), 2000.0) is Verdict.WAIT
    assert verdict(sub, None, 2000.0) is Verdict.WAIT  # feed down: wait, do not guess
    assert verdict(sub, one_service("iTunes Store"), 2000.0) is Verdict.WAIT  # not listed
    assert verdict(sub, report("mail_resolved"), 2000.0) is Verdict.FIXED
    assert verdict(sub, report("normal"), 2000.0) is Verdict.FIXED
    slow = one_service("iCloud Mail", event("Performance"))
    assert verdict(sub, slow, 2000.0) is Verdict.FIXED  # slowness is not an outage
    late = 1000.0 + SUBSCRIPTION_MAX_AGE + 1
    assert verdict(sub, report("mail_outage"), late) is Verdict.EXPIRED


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
    with caplog.at_level(logging.WARNING, logger="bot.apple_status.status"):
        assert await StatusFeed(feeds.template).get("en") is None
    assert any("Apple status feed" in r.getMessage() for r in caplog.records)


async def test_slow_feed_times_out(feeds: FeedServer, caplog: pytest.LogCaptureFixture) -> None:
    feeds.mode = "slow"
    feed = StatusFeed(feeds.template, timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="bot.apple_status.status"):
        assert await feed.get("en") is None
    assert any("no answer within 0.2 s" in r.getMessage() for r in caplog.records)


async def test_unreachable_feed_is_none_and_the_failure_is_cached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FeedServer() as server:
        template = server.template  # the port is closed once the server is gone
    clock = Clock()
    feed = StatusFeed(template, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bot.apple_status.status"):
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
    monkeypatch.setattr("bot.apple_status.status.MAX_BYTES", 1000)
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


# --------------------------------------------------------------------------- the service map


def test_service_map_of_the_knowledge_base() -> None:
    entries = build_engine(ROOT / "knowledge", ROOT / "locales").knowledge.entries
    services = load_service_map(ROOT / "knowledge" / "status.yaml", entries.keys())
    assert services.names_for("mail_not_working") == ("iCloud Mail", "iCloudメール")
    store = services.names_for("store_unavailable")
    assert "App Store" in store and "iTunes Store" in store and "iCloud Mail" not in store
    default = services.names_for("apple_id_server_error")
    for name in ("iCloud Account & Sign In", "Apple Account", "Apple ID", "iCloud Drive", "Photos"):
        assert name in default
    assert "iCloud Mail" not in default and "App Store" not in default


def test_service_map_problems_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "status.yaml"
    path.write_text(
        "services:\n"
        "  mail: [iCloud Mail]\n"
        "  Bad-Id: [x]\n"
        "  empty: []\n"
        "default: [mail, nowhere]\n"
        "entries:\n"
        "  no_such_entry: [mail]\n"
        "colour: blue\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as caught:
        load_service_map(path, {"mail_not_working"})
    text = str(caught.value)
    for needle in (
        "'Bad-Id' must be a lower_snake_case id",
        "services.empty: expected a list of names",
        "default: unknown service 'nowhere'",
        "'no_such_entry' is not an entry",
        "unknown key 'colour'",
    ):
        assert needle in text
    assert all(p.file == str(path) and p.line > 0 for p in caught.value.problems)


def test_check_reports_a_broken_status_yaml(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for source in (ROOT / "knowledge").glob("*.yaml"):
        (knowledge / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (knowledge / "status.yaml").write_text("services: {}\ndefault: []\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"status\.yaml"):
        build_engine(knowledge, ROOT / "locales")


# --------------------------------------------------------------------------- the step


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(ROOT / "knowledge", ROOT / "locales")


def first_step(
    engine: Engine, text: str, status: StatusReport | None, ctx: Context = EN
) -> tuple[UserState, Reply]:
    state = UserState(1, device=Device.IPHONE)
    result = engine.handle(state, Text(text), replace(ctx, status=status))
    assert result.state.walk is not None and result.state.walk.fix == STATUS_FIX
    [reply] = result.replies
    return result.state, reply


def test_step_shows_an_ongoing_mail_outage(engine: Engine) -> None:
    _, reply = first_step(engine, MAIL_EN, report("mail_outage"))
    assert "Outage" in reply.text and "<b>iCloud Mail</b>" in reply.text
    assert f"since {OUTAGE_START_UTC}" in reply.text
    assert "Users may be unable to access iCloud Mail." in reply.text
    assert "most likely the cause" in reply.text
    assert "Open Apple's System Status page" not in reply.text  # the answer, not the errand
    assert any("Notify me when it's fixed" in label for label in labels(reply))
    urls = [b.url for row in reply.buttons for b in row if b.url]
    assert urls == ["https://www.apple.com/support/systemstatus/"]  # the link stays
    assert "Solved" in " ".join(labels(reply)) and "Next fix" in " ".join(labels(reply))


def test_step_in_japanese_shows_japan_time(engine: Engine) -> None:
    _, reply = first_step(engine, "iCloudメールが使えない", report("mail_outage", "ja_JP"), JA)
    assert "<b>iCloudメール</b>" in reply.text and "停止" in reply.text
    assert f"{OUTAGE_START_JST}(日本時間)から" in reply.text
    assert "iCloudメールを利用できない可能性があります。" in reply.text
    assert any("復旧したら知らせて" in label for label in labels(reply))


def test_step_all_normal_is_one_line_without_notify(engine: Engine) -> None:
    _, reply = first_step(engine, MAIL_EN, report("normal"))
    assert "✅ No problems reported: iCloud Mail." in reply.text
    assert "Notify" not in " ".join(labels(reply))
    assert "Performance" not in reply.text  # a resolved event elsewhere is history


def test_step_without_status_keeps_the_static_text(engine: Engine) -> None:
    _, reply = first_step(engine, MAIL_EN, None)
    assert "Open Apple's System Status page with the button below." in reply.text
    assert "Apple System Status right now" not in reply.text
    assert "Notify" not in " ".join(labels(reply))
    urls = [b.url for row in reply.buttons for b in row if b.url]
    assert urls == ["https://www.apple.com/support/systemstatus/"]


def test_step_shows_only_the_services_of_the_entry(engine: Engine) -> None:
    outage = report("mail_outage")
    _, store_reply = first_step(engine, "The App Store won't open", outage)
    assert "iCloud Mail" not in store_reply.text
    assert "No problems reported: App Store, iTunes Store, Mac App Store." in store_reply.text
    _, sign_in = first_step(engine, "There was an error connecting to the Apple ID server.", outage)
    assert "iCloud Mail" not in sign_in.text and "No problems reported" in sign_in.text
    assert "iCloud Account &amp; Sign In" in sign_in.text and "Apple Account" in sign_in.text
    assert "Notify" not in " ".join(labels(store_reply) + labels(sign_in))

    store_down = one_service("App Store", event("Issue", message="Purchases may fail."))
    _, reply = first_step(engine, "The App Store won't open", store_down)
    assert "🟠 Issue: <b>App Store</b>" in reply.text and "Purchases may fail." in reply.text
    assert any("Notify" in label for label in labels(reply))


def test_maintenance_or_slowness_is_shown_without_notify(engine: Engine) -> None:
    for kind in ("Maintenance", "Performance", "Upcoming-Thing"):
        status = one_service("iCloud Mail", event(kind, message="Planned work."))
        _, reply = first_step(engine, MAIL_EN, status)
        assert "Planned work." in reply.text
        assert "most likely the cause" not in reply.text
        assert "Notify" not in " ".join(labels(reply))
    _, reply = first_step(engine, MAIL_EN, one_service("iCloud Mail", event("Outage", "upcoming")))
    assert "No problems reported: iCloud Mail." in reply.text


def test_feed_without_the_relevant_services_falls_back(engine: Engine) -> None:
    _, reply = first_step(engine, MAIL_EN, one_service("Apple Pay", event("Outage")))
    assert "Open Apple's System Status page with the button below." in reply.text


def test_engine_wants_the_status_only_for_the_status_step(engine: Engine) -> None:
    state = UserState(1, device=Device.IPHONE)
    step1 = engine.handle(state, Text(MAIL_EN), EN)
    assert engine.wants_status(Text(MAIL_EN), step1)
    tap_next = Tap(button_data(step1.replies[0], "Next fix"), message_id=7)
    step2 = engine.handle(step1.state, tap_next, EN)
    assert not engine.wants_status(tap_next, step2)
    tap_back = Tap(button_data(step2.replies[0], "Back"), message_id=7)
    assert engine.wants_status(tap_back, engine.handle(step2.state, tap_back, EN))
    hello = engine.handle(state, Text("/help"), EN)
    assert not engine.wants_status(Text("/help"), hello)
    notify = Tap(Callback(Action.NOTIFY, "mail_not_working", Device.IPHONE).encode())
    assert engine.wants_status(notify, engine.handle(state, notify, EN))


def test_notify_subscribes_to_the_broken_services(engine: Engine) -> None:
    outage = report("mail_outage")
    state, reply = first_step(engine, MAIL_EN, outage)
    tap = Tap(button_data(reply, "Notify"), message_id=7)
    result = engine.handle(state, tap, replace(EN, status=outage))
    assert result.effects == (Subscribe("mail_not_working", Device.IPHONE, "en", ("iCloud Mail",)),)
    assert result.toast is not None and "message you" in result.toast and not result.alert
    assert result.state == state and result.replies == ()


def test_notify_when_the_outage_is_over_or_unknown(engine: Engine) -> None:
    state, reply = first_step(engine, MAIL_EN, report("mail_outage"))
    tap = Tap(button_data(reply, "Notify"), message_id=7)
    over = engine.handle(state, tap, replace(EN, status=report("mail_resolved")))
    assert over.effects == () and over.alert and "no longer" in (over.toast or "")
    unknown = engine.handle(state, tap, EN)
    assert unknown.effects == () and unknown.alert and "cannot reach" in (unknown.toast or "")


def test_notify_callback_fits_and_forgeries_are_refused(engine: Engine) -> None:
    longest = max(engine.knowledge.entries, key=len)
    assert len(Callback(Action.NOTIFY, longest, Device.WINDOWS).encode().encode()) <= MAX_BYTES
    forged = engine.handle(UserState(1), Tap("sn|no_such_entry|i"), EN)
    assert forged.effects == () and forged.alert


def test_fixed_message_continues_the_walk(engine: Engine) -> None:
    sub = Subscription(1, 1, "en", "mail_not_working", Device.IPHONE, ("iCloud Mail",), 5.0)
    reply = engine.status_fixed_reply(sub)
    assert "Apple reports that iCloud Mail is working again" in reply.text
    state, _ = first_step(engine, MAIL_EN, None)
    tap = Tap(button_data(reply, "Next fix"), message_id=99)
    result = engine.handle(state, tap, EN)
    assert result.state.walk is not None and result.state.walk.position == 1
    assert "Step 2/" in result.replies[0].text
    ja = engine.status_fixed_reply(replace(sub, lang="ja", services=("iCloudメール",)))
    assert "iCloudメールは復旧しました" in ja.text
    gone = engine.status_fixed_reply(replace(sub, entry="removed_since"))
    assert "Next" not in " ".join(labels(gone)) and "Start over" in " ".join(labels(gone))


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
    assert "cannot hear that Apple fixed it" in bot.log()


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
