"""Apple status feeds for tests: the samples in tests/data/status/ and a feed server."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bot.apple_status.report import ServiceStatus, StatusEvent, StatusReport, parse_feed
from tests.support.paths import DATA

STATUS_DATA = DATA / "status"


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


class FeedServer:
    """Serve sample feeds on 127.0.0.1; `mode` and `scenario` can change between requests."""

    def __init__(self) -> None:
        self.scenario = "normal"
        self.mode = "json"  # json, jsonp, garbage, unexpected, error, slow
        self.body: str | None = None  # served instead of the scenario's sample when set
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
        body = self.body if self.body is not None else sample(self.scenario, locale)
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
