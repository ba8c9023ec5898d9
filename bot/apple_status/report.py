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
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.content.knowledge import Device
from bot.content.languages import LANGUAGES
from bot.content.locales import Html, Locales, escape
from bot.content.status_map import ServiceMap

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
    "parse_feed",
    "relevant",
    "status_html",
    "still_broken",
    "verdict",
]

STATUS_FIX = "check_apple_status"  # the fix whose step shows the live status
SUBSCRIPTION_MAX_AGE = 14 * 24 * 3600.0  # then a subscription is dropped without a message
PROBLEM_TYPES = frozenset({"outage", "issue"})  # what makes an event "the likely cause"

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
    name = raw.get("serviceName")
    if not isinstance(name, str) or not name.strip():
        return None
    events = raw.get("events")
    if events is None:
        events = []
    if not isinstance(events, list):
        return None
    return ServiceStatus(name.strip(), tuple(e for e in map(_event, events) if e is not None))


def _event(raw: Any) -> StatusEvent | None:
    if not isinstance(raw, dict):
        return None
    status_type, event_status = raw.get("statusType"), raw.get("eventStatus")
    if not isinstance(status_type, str) or not isinstance(event_status, str):
        return None
    epoch = raw.get("epochStartDate")
    started_at = (
        epoch / 1000 if isinstance(epoch, int | float) and not isinstance(epoch, bool) else None
    )
    message_id = raw.get("messageId")
    return StatusEvent(
        status_type=status_type.strip(),
        event_status=event_status.strip(),
        message=_text(raw.get("message")),
        start=_text(raw.get("startDate")),
        end=_text(raw.get("endDate")) or None,
        started_at=started_at,
        message_id=str(message_id) if isinstance(message_id, str | int) else None,
    )


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


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
    found = report.find(names)
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
    """Render the live status of the relevant services: all normal, or each ongoing event."""
    lines: list[str] = [locales.t(lang, "status.title")]
    if not found.incidents:
        lines.append(locales.t(lang, "status.all_normal", services=", ".join(found.services)))
        return Html("\n".join(lines))
    for incident in found.incidents:
        event = incident.event
        kind = event.status_type.lower()
        label = (
            locales.t(lang, f"status.type.{kind}")
            if kind in _TYPE_KEYS
            else locales.t(lang, "status.type.other", type=event.status_type)
        )
        if event.started_at is not None:
            since = locales.t(lang, "status.since", time=format_time(event.started_at, lang))
        elif event.start:
            since = locales.t(lang, "status.since_raw", time=event.start)
        else:
            since = Html("")
        lines.append(
            locales.t(
                lang,
                "status.event",
                type=label,
                services=", ".join(incident.services),
                since=since,
            ).rstrip()
        )
        if event.message:
            lines.append(Html(f"<i>{escape(event.message)}</i>"))
    if found.problems:
        lines += ["", locales.t(lang, "status.likely_cause")]
    return Html("\n".join(lines))


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
