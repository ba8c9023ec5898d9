"""Apple's System Status, the pure part: parse the feed, pick what matters, render, decide.

The feed (`bot/apple_status/status.py`, HTTP and cache) hands its body to `parse_feed`; the
conversation renders `relevant` parts with `status_html`; the poller asks `verdict` what to do
with a `Subscription`. Which services matter for which entry is data: knowledge/status.yaml,
loaded by `load_service_map`. No I/O library is imported here.
"""

from __future__ import annotations

import datetime as dtm
import json
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.content.knowledge import Device, line_of, load_yaml
from bot.content.locales import Html, Locales, escape
from bot.errors import KnowledgeError, Problem

STATUS_FIX = "check_apple_status"  # the fix whose step shows the live status
SUBSCRIPTION_MAX_AGE = 14 * 24 * 3600.0  # then a subscription is dropped without a message
PROBLEM_TYPES = frozenset({"outage", "issue"})  # what makes an event "the likely cause"

# Start times: Japanese users read Japan time, everyone else UTC (the label is in locales/).
_ZONES: Mapping[str, dtm.tzinfo] = {"ja": dtm.timezone(dtm.timedelta(hours=9)), "en": dtm.UTC}
_TIME_FORMATS: Mapping[str, str] = {"ja": "%Y/%m/%d %H:%M", "en": "%Y-%m-%d %H:%M"}
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
    """Format a moment for a user: Japan time for Japanese, UTC for English."""
    moment = dtm.datetime.fromtimestamp(epoch, _ZONES.get(lang, dtm.UTC))
    return moment.strftime(_TIME_FORMATS.get(lang, _TIME_FORMATS["en"]))


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


# --------------------------------------------------------------------------- the service map


@dataclass(frozen=True, slots=True)
class ServiceMap:
    """Which of Apple's services matter for which entry (knowledge/status.yaml)."""

    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # id → published names
    entries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # entry → group ids
    default: tuple[str, ...] = ()  # group ids for every other entry

    def names_for(self, entry_id: str) -> tuple[str, ...]:
        """Return every published name (both languages) of the services that matter here."""
        group_ids = self.entries.get(entry_id, self.default)
        return tuple(name for g in group_ids for name in self.groups.get(g, ()))


def load_service_map(path: Path, entry_ids: Collection[str] | None = None) -> ServiceMap:
    """Load and check knowledge/status.yaml; raise KnowledgeError naming file and line."""
    problems: list[Problem] = []
    doc = load_yaml(path, problems)
    if problems:
        raise KnowledgeError(problems)
    file = str(path)

    def problem(line: int, message: str) -> None:
        problems.append(Problem(file, line, message))

    if not isinstance(doc, dict):
        raise KnowledgeError([Problem(file, 1, "expected a mapping at the top level")])
    top = line_of(doc, 1)
    for key in doc:
        if key not in ("services", "default", "entries"):
            problem(top, f"unknown key {key!r}")
    groups: dict[str, tuple[str, ...]] = {}
    raw_groups = doc.get("services")
    if not isinstance(raw_groups, dict) or not raw_groups:
        problem(top, "services: expected a mapping of service ids to published names")
        raw_groups = {}
    for gid, names in raw_groups.items():
        line = line_of(raw_groups, top)
        if not isinstance(gid, str) or not gid.isidentifier() or not gid.islower():
            problem(line, f"services: {gid!r} must be a lower_snake_case id")
        elif not _string_list(names):
            problem(line_of(names, line), f"services.{gid}: expected a list of names")
        else:
            groups[gid] = tuple(n.strip() for n in names)

    def group_list(value: Any, where: str, line: int) -> tuple[str, ...]:
        if not _string_list(value):
            problem(line, f"{where}: expected a list of service ids")
            return ()
        for gid in value:
            if gid not in groups:
                problem(line_of(value, line), f"{where}: unknown service {gid!r}")
        return tuple(value)

    default = group_list(doc.get("default"), "default", top)
    entries: dict[str, tuple[str, ...]] = {}
    raw_entries = doc.get("entries", {})
    if not isinstance(raw_entries, dict):
        problem(top, "entries: expected a mapping of entry ids to service ids")
        raw_entries = {}
    for eid, value in raw_entries.items():
        line = line_of(raw_entries, top)
        if entry_ids is not None and eid not in entry_ids:
            problem(line, f"entries: {eid!r} is not an entry of the knowledge base")
        entries[str(eid)] = group_list(value, f"entries.{eid}", line)
    if problems:
        raise KnowledgeError(problems)
    return ServiceMap(groups, entries, default)


def _string_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v.strip() for v in value)
    )
