"""Apple's System Status feed as data: parse it, pick the services that matter, render them.

Pure: no I/O (the conversation imports it); fetching is bot.apple_status.feed. Apple publishes
the state of its services at
`https://www.apple.com/support/systemstatus/data/system_status_{locale}.js`, where `{locale}`
is a language's `feed_locale` (en_US, ja_JP; bot.content.languages). The body is JSON,
sometimes wrapped as JSONP (`jsonCallback({...});`): `services[]` with `serviceName` and
`events[]`, each event with `statusType` (Available, Outage, Issue, Performance, Maintenance),
`eventStatus` (ongoing, resolved, upcoming, completed), `message`, `startDate`, `endDate` and,
usually, `epochStartDate` (milliseconds). Which services matter for which entry is data:
knowledge/status.yaml (bot.content.status_map).
"""

from __future__ import annotations

import datetime as dtm
import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.content.knowledge import Device
from bot.content.languages import LANGUAGES
from bot.content.locales import Html, Locales, escape
from bot.content.status_map import ServiceMap, load_service_map

__all__ = [
    "PROBLEM_TYPES",
    "STATUS_FIX",
    "SUBSCRIPTION_MAX_AGE",
    "Incident",
    "Relevant",
    "ServiceMap",
    "ServiceStatus",
    "StatusEvent",
    "StatusReport",
    "Subscription",
    "Verdict",
    "fold_name",
    "format_time",
    "load_service_map",
    "parse_feed",
    "relevant",
    "status_html",
    "still_broken",
    "verdict",
]

STATUS_FIX = "check_apple_status"  # the fix whose step shows the live status
SUBSCRIPTION_MAX_AGE = 14 * 24 * 3600.0  # then a subscription is dropped without a message
PROBLEM_TYPES = frozenset({"outage", "issue"})  # what makes an event "the likely cause"

# What one status step shows at most, whatever the feed holds: the step must fit in one
# Telegram message (4096) beside the fix's own text.
MAX_SHOWN_INCIDENTS = 3
MAX_MESSAGE_CHARS = 300  # an event's message (Apple's are one or two sentences)
MAX_NAME_CHARS = 80  # a service name, status type or published start
# Start times outside these years are not a time anyone published: shown without a time.
_EARLIEST = dtm.datetime(2000, 1, 1, tzinfo=dtm.UTC).timestamp()
_LATEST = dtm.datetime(2100, 1, 1, tzinfo=dtm.UTC).timestamp()
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")

_JSONP = re.compile(r"^[A-Za-z_$][\w$.]*\s*\((?P<body>.*)\)\s*;?$", re.DOTALL)
_TYPE_KEYS = ("outage", "issue", "performance", "maintenance")


# --------------------------------------------------------------------------- the feed's model


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One event of one service, as published."""

    status_type: str  # Outage, Issue, Performance, Maintenance, …
    event_status: str  # ongoing, resolved, upcoming, completed, …
    message: str = ""
    start: str = ""  # the start as published, in the feed's own time zone
    end: str | None = None
    started_at: float | None = None  # epochStartDate in seconds, when published
    message_id: str | None = None

    @property
    def ongoing(self) -> bool:
        """Return True while Apple reports the event as happening now."""
        return self.event_status.strip().lower() == "ongoing"

    @property
    def problem(self) -> bool:
        """Return True for an outage or issue (not slowness or maintenance)."""
        return self.status_type.strip().lower() in PROBLEM_TYPES


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One service on Apple's page and its events."""

    name: str
    events: tuple[StatusEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The whole feed in one language."""

    services: tuple[ServiceStatus, ...]

    def find(self, names: Iterable[str]) -> tuple[ServiceStatus, ...]:
        """Return the services published under any of these names, in the feed's order."""
        wanted = {fold_name(n) for n in names}
        return tuple(s for s in self.services if fold_name(s.name) in wanted)


def fold_name(name: str) -> str:
    """Fold a service name for comparison: width, case and spaces do not matter."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


# --------------------------------------------------------------------------- parsing


def parse_feed(body: bytes | str) -> StatusReport | None:
    """Parse a feed body (JSON or JSONP); return None if it is not a usable feed.

    Tolerant: a service or event that lacks what we need is skipped, not fatal. A body with
    no usable service at all is unusable, so an empty or foreign document never reads as
    "everything is fine".
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    text = body.strip().lstrip("\ufeff")
    wrapped = _JSONP.match(text)
    if wrapped is not None:
        text = wrapped.group("body").strip()
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), list):
        return None
    services = tuple(s for s in map(_service, doc["services"]) if s is not None)
    return StatusReport(services) if services else None


def _service(raw: Any) -> ServiceStatus | None:
    if not isinstance(raw, dict):
        return None
    name = _text(raw.get("serviceName"), MAX_NAME_CHARS)
    if not name:
        return None
    events = raw.get("events")
    if events is None:
        events = []
    if not isinstance(events, list):
        return None
    return ServiceStatus(name, tuple(e for e in map(_event, events) if e is not None))


def _event(raw: Any) -> StatusEvent | None:
    if not isinstance(raw, dict):
        return None
    status_type, event_status = raw.get("statusType"), raw.get("eventStatus")
    if not isinstance(status_type, str) or not isinstance(event_status, str):
        return None
    message_id = raw.get("messageId")
    return StatusEvent(
        status_type=_text(status_type, MAX_NAME_CHARS),
        event_status=_text(event_status, MAX_NAME_CHARS),
        message=_text(raw.get("message"), MAX_MESSAGE_CHARS),
        start=_text(raw.get("startDate"), MAX_NAME_CHARS),
        end=_text(raw.get("endDate"), MAX_NAME_CHARS) or None,
        started_at=_seconds(raw.get("epochStartDate")),
        message_id=_text(str(message_id), MAX_NAME_CHARS) if _is_id(message_id) else None,
    )


def _seconds(epoch: Any) -> float | None:
    """Return epochStartDate (milliseconds) in seconds, or None unless it is a usable time.

    Anything else (NaN, infinities, 1e300, negative, text, null) means "no time": the event
    is then shown with its published start text, or without a time.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return None
    try:
        seconds = epoch / 1000
    except OverflowError:  # an integer too large for a float
        return None
    return seconds if math.isfinite(seconds) and _EARLIEST <= seconds < _LATEST else None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30
    )


def _text(value: Any, limit: int) -> str:
    """Return a feed text on one line, without control characters or lone surrogates, cut."""
    if not isinstance(value, str):
        return ""
    text = " ".join(_CONTROL.sub(" ", value).split())
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- what matters


@dataclass(frozen=True, slots=True)
class Incident:
    """One ongoing event and the relevant services it affects."""

    services: tuple[str, ...]
    event: StatusEvent


@dataclass(frozen=True, slots=True)
class Relevant:
    """The part of a report that matters for one entry."""

    services: tuple[str, ...]  # relevant services found in the feed, as published
    incidents: tuple[Incident, ...]  # their ongoing events, one per event

    @property
    def problems(self) -> tuple[Incident, ...]:
        """Return the ongoing outages and issues: the likely cause of the user's error."""
        return tuple(i for i in self.incidents if i.event.problem)

    @property
    def problem_services(self) -> tuple[str, ...]:
        """Return the relevant services with an ongoing outage or issue, in feed order."""
        broken = {s for i in self.problems for s in i.services}
        return tuple(s for s in self.services if s in broken)


def relevant(report: StatusReport, names: Iterable[str]) -> Relevant | None:
    """Pick the services called `names` and their ongoing events; None if none is published."""
    found = _first_of_each_name(report.find(names))
    if not found:
        return None  # renamed or missing services: better the static text than a wrong "all ok"
    grouped: dict[tuple[str, ...], tuple[list[str], StatusEvent]] = {}
    for service in found:
        for event in service.events:
            if not event.ongoing:
                continue
            # Apple repeats one event under every service it affects: show it once.
            key = (
                (event.message_id,)
                if event.message_id
                else (event.status_type, event.start, event.message)
            )
            services, _ = grouped.setdefault(key, ([], event))
            if service.name not in services:
                services.append(service.name)
    incidents = tuple(Incident(tuple(names_), event) for names_, event in grouped.values())
    return Relevant(tuple(s.name for s in found), incidents)


def _first_of_each_name(services: Iterable[ServiceStatus]) -> tuple[ServiceStatus, ...]:
    """Keep the first service of each name: a feed listing one twice shows it once."""
    seen: dict[str, ServiceStatus] = {}
    for service in services:
        seen.setdefault(fold_name(service.name), service)
    return tuple(seen.values())


def still_broken(report: StatusReport, services: Collection[str]) -> bool | None:
    """Return whether any of these services still has an ongoing outage or issue.

    None when the feed lists none of them (renamed, or a partial feed): that is not news.
    """
    found = report.find(services)
    if not found:
        return None
    return any(e.ongoing and e.problem for s in found for e in s.events)


# --------------------------------------------------------------------------- rendering


def format_time(epoch: float, lang: str) -> str:
    """Format a moment for a user in their language's time zone (Japan time, UTC, …)."""
    language = LANGUAGES[lang]
    moment = dtm.datetime.fromtimestamp(epoch, language.time_zone)
    return moment.strftime(language.time_format)


def status_html(locales: Locales, lang: str, found: Relevant) -> Html:
    """Render the live status of the relevant services: all normal, or each ongoing event.

    At most MAX_SHOWN_INCIDENTS events are shown, outages and issues first when there are
    more, so that any feed leaves room for the fix's own text in one message.
    """
    lines: list[str] = [locales.t(lang, "status.title")]
    if not found.incidents:
        lines.append(locales.t(lang, "status.all_normal", services=", ".join(found.services)))
        return Html("\n".join(lines))
    shown = found.incidents
    if len(shown) > MAX_SHOWN_INCIDENTS:
        shown = tuple(sorted(shown, key=lambda i: not i.event.problem))[:MAX_SHOWN_INCIDENTS]
    for incident in shown:
        event = incident.event
        kind = event.status_type.lower()
        label = (
            locales.t(lang, f"status.type.{kind}")
            if kind in _TYPE_KEYS
            else locales.t(lang, "status.type.other", type=event.status_type)
        )
        lines.append(
            locales.t(
                lang,
                "status.event",
                type=label,
                services=", ".join(incident.services),
                since=_since(locales, lang, event),
            ).rstrip()
        )
        if event.message:
            lines.append(Html(f"<i>{escape(event.message)}</i>"))
    if found.problems:
        lines += ["", locales.t(lang, "status.likely_cause")]
    return Html("\n".join(lines))


def _since(locales: Locales, lang: str, event: StatusEvent) -> Html:
    """Render when an event started: its time, else its published start, else nothing."""
    if event.started_at is not None:
        try:
            return locales.t(lang, "status.since", time=format_time(event.started_at, lang))
        except (OverflowError, OSError, ValueError):  # a platform's narrower time range
            pass
    if event.start:
        return locales.t(lang, "status.since_raw", time=event.start)
    return Html("")


# --------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True, slots=True)
class Subscription:
    """A user waiting to hear that Apple fixed these services."""

    user_id: int
    chat_id: int
    lang: str  # the feed language: the services are named as in that feed
    entry: str
    device: Device
    services: tuple[str, ...]
    created_at: float


class Verdict(StrEnum):
    """What the poller does with one subscription."""

    WAIT = "wait"  # still broken, or we cannot tell right now
    FIXED = "fixed"  # tell the user, then drop it
    EXPIRED = "expired"  # drop it silently


def verdict(sub: Subscription, report: StatusReport | None, now: float) -> Verdict:
    """Decide what to do with a subscription given the current report (None: feed down)."""
    if now - sub.created_at > SUBSCRIPTION_MAX_AGE:
        return Verdict.EXPIRED
    if report is None:
        return Verdict.WAIT
    return Verdict.FIXED if still_broken(report, sub.services) is False else Verdict.WAIT
