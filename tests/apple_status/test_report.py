"""Apple's System Status as data: parsing any feed, what matters for an entry, the status step.

Samples are tests/data/status/<scenario>.<locale>.json, shaped like Apple's real feed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.app import build_engine
from bot.apple_status.report import (
    STATUS_FIX,
    SUBSCRIPTION_MAX_AGE,
    ServiceStatus,
    StatusEvent,
    StatusReport,
    Subscription,
    Verdict,
    parse_feed,
    relevant,
    still_broken,
    verdict,
)
from bot.content.knowledge import Device
from bot.content.markup import html_problems
from bot.content.text import utf16_len
from bot.conversation.callbacks import MAX_BYTES, Action, Callback
from bot.conversation.engine import Engine
from bot.conversation.events import Context, Tap, Text
from bot.conversation.replies import Reply, Subscribe
from bot.conversation.state import UserState
from tests.support.paths import ROOT
from tests.support.replies import button as button_data
from tests.support.replies import labels
from tests.support.status_feeds import event, one_service, report, sample

EN = Context(now=1000.0, language_code="en")
JA = Context(now=1000.0, language_code="ja")
MAIL_EN = "iCloud Mail is not working"
OUTAGE_START_UTC = "2026-01-01 08:00 UTC"  # epochStartDate 1767254400000 in the samples
OUTAGE_START_JST = "2026/01/01 17:00"


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


# --------------------------------------------------------------------------- any value survives

ODD_VALUES: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    1e300,
    -1e300,
    -1,
    0,
    10**30,
    -(10**30),
    True,
    None,
    "",
    " ",
    "1767254400000",
    "<b>&amp; & </i>",
    "\ud800 lone surrogate \x00\x1b",
    "x" * 5000,
    [],
    [1, "a", None],
    {},
    {"statusType": "Outage"},
]
DELETE = object()  # the key is left out


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list position of a JSON document, outermost first."""
    if not isinstance(node, dict | list):
        return []
    found: list[tuple[Any, ...]] = []
    for key, value in node.items() if isinstance(node, dict) else enumerate(node):
        found.append((*prefix, key))
        found += paths(value, (*prefix, key))
    return found


def mutated(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(doc))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


def relevant_paths(doc: dict[str, Any], service: str) -> list[tuple[Any, ...]]:
    """The paths of the document itself, of its services list, and all of one service."""
    index = next(i for i, s in enumerate(doc["services"]) if s["serviceName"] == service)
    return [("services",), ("services", 0), *paths(doc["services"][index], ("services", index))]


@pytest.mark.parametrize(
    ("locale", "ctx", "text", "service"),
    [
        ("en_US", EN, MAIL_EN, "iCloud Mail"),
        ("ja_JP", JA, "iCloudメールが使えない", "iCloudメール"),
    ],
)
def test_any_value_in_any_field_still_answers_the_step(
    engine: Engine, locale: str, ctx: Context, text: str, service: str
) -> None:
    """Throw odd values at every field of a real feed: parsing never raises, the step answers.

    Every field of the affected service (and the document's own) gets every odd value and is
    also left out; each feed must give a step that fits one message and parses as HTML.
    """
    doc = json.loads(sample("mail_outage", locale))
    cases = 0
    for path in relevant_paths(doc, service):
        for value in [*ODD_VALUES, DELETE]:
            body = json.dumps(mutated(doc, path, value))  # NaN and Infinity as Apple's JSON may
            parsed = parse_feed(body)
            _, reply = first_step(engine, text, parsed, ctx)
            where = f"{path} = {value!r:.40}"
            assert reply.text.strip(), where
            assert html_problems(reply.text) == [], where
            assert utf16_len(reply.text) <= 4096, where
            cases += 1
    assert cases > 300  # the walk covers the whole service, not just a few fields


@pytest.mark.parametrize(
    "epoch", [float("nan"), float("inf"), -float("inf"), 1e300, -1, 10**30, "1767254400000", None]
)
def test_an_ongoing_event_without_a_usable_time_is_shown_without_one(
    engine: Engine, epoch: Any
) -> None:
    doc = json.loads(sample("mail_outage"))
    mail = next(s for s in doc["services"] if s["serviceName"] == "iCloud Mail")
    mail["events"][0]["epochStartDate"] = epoch
    del mail["events"][0]["startDate"]
    parsed = parse_feed(json.dumps(doc))
    assert parsed is not None
    [found] = [e for s in parsed.find(["iCloud Mail"]) for e in s.events]
    assert found.started_at is None
    _, reply = first_step(engine, MAIL_EN, parsed)
    assert "Outage" in reply.text and "Users may be unable to access iCloud Mail." in reply.text
    assert OUTAGE_START_UTC not in reply.text and " since " not in reply.text


def test_a_feed_full_of_events_is_cut_to_what_fits(engine: Engine) -> None:
    many = [
        event("Issue" if n % 2 else "Maintenance", message=f"event {n} " + "x" * 900)
        for n in range(40)
    ]
    parsed = parse_feed(
        json.dumps(
            {
                "services": [
                    {
                        "serviceName": "iCloud Mail",
                        "events": [
                            {
                                "statusType": e.status_type,
                                "eventStatus": e.event_status,
                                "message": e.message,
                                "messageId": str(n),
                            }
                            for n, e in enumerate(many)
                        ],
                    }
                ]
                * 50  # the same service listed again and again
            }
        )
    )
    _, reply = first_step(engine, MAIL_EN, parsed)
    assert utf16_len(reply.text) <= 4096
    assert reply.text.count("<i>event ") == 3 and "<i>event 1 " in reply.text
    assert "Maintenance" not in reply.text  # issues first when not all fit
    assert reply.text.count("iCloud Mail") < 10
