"""Every entry × device × language walked through the engine, Next until the end.

What a stuck user would notice: another device's name in a step, a walk that is all but the
final hand-over, a warning after the steps it warns about, an ending without the summary to
copy, an entry for another device walked anyway.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass

import pytest

from bot.content.knowledge import Device, EntryKind
from bot.content.languages import LANGUAGES
from bot.conversation.callbacks import Action, Callback
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Context, Tap
from bot.conversation.replies import Reply, Result
from bot.conversation.state import UserState
from tests.support.replies import button, labels, urls

LANGS = LANGUAGES.codes
NEXT = {"en": "Next fix", "ja": "次の方法"}
NAMES: dict[Device, re.Pattern[str]] = {
    Device.IPHONE: re.compile(r"iPhone|iPad|iOS"),
    Device.MAC: re.compile(r"\bMac(?!intosh)\b|macOS"),
    Device.WINDOWS: re.compile(r"Windows|\bPC\b"),
}
# Steps that name another device on purpose, compared or as the place something comes from.
ALLOWED: dict[tuple[str, Device], frozenset[Device]] = {
    # The code arrives on a trusted iPhone, iPad or Mac (or by SMS) whatever the device.
    ("get_verification_code", Device.WINDOWS): frozenset({Device.IPHONE, Device.MAC}),
    ("get_verification_code", Device.MAC): frozenset({Device.IPHONE}),
    ("get_verification_code", Device.IPHONE): frozenset({Device.MAC}),
}
MIN_REAL_FIXES = 3


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a walk as the user saw it."""

    fix: str
    reply: Reply


def walk(engine: Engine, entry_id: str, device: Device, lang: str) -> tuple[Result, list[Step]]:
    """Start the entry on the device (via its FAQ answer for a FAQ) and tap Next to the end."""
    ctx = Context(now=1000.0, language_code=lang, support=True)
    state = UserState(77, device=device)
    if engine.knowledge.entries[entry_id].kind is EntryKind.FAQ:
        result = engine.handle(state, Tap(Callback(Action.WALK, entry_id).encode(), 1), ctx)
    else:
        result = engine.handle(state, Command("start", entry_id), ctx)
    steps: list[Step] = []
    for _ in range(60):  # bounded: no path is this long
        current = result.state.walk
        if current is None:
            break
        assert current.fix is not None
        steps.append(Step(current.fix, result.replies[-1]))
        if NEXT[lang] not in " ".join(labels(result.replies[-1])):
            break
        result = engine.handle(result.state, Tap(button(result.replies[-1], NEXT[lang]), 1), ctx)
    return result, steps


def step_body(text: str) -> str:
    """The text of a step from its progress line on, without the summary of the ending."""
    start = text.find("<b>Step ") if "<b>Step " in text else text.find("<b>ステップ ")
    body = text[start:]
    return html.unescape(body.split("<pre>")[0])


def all_cases(engine: Engine) -> list[tuple[str, Device, str]]:
    return list(itertools.product(engine.knowledge.entries, Device, LANGS))


def test_every_walk_on_every_device_in_every_language(engine: Engine) -> None:
    kb = engine.knowledge
    problems: list[str] = []
    for entry_id, device, lang in all_cases(engine):
        entry = kb.entries[entry_id]
        where = f"{entry_id} × {device.value} × {lang}"
        if not entry.applies_to(device):
            continue  # test_entries_for_other_devices_walk_nothing
        _, steps = walk(engine, entry_id, device, lang)
        own = engine.locales.t(lang, f"device.{device.value}")
        for n, step in enumerate(steps):
            body = step_body(step.reply.text)
            if own not in body.split("\n")[0]:
                problems.append(f"{where}: step {n + 1} does not say it is for {own}")
            for other in Device:
                if other is device or other in ALLOWED.get((step.fix, device), frozenset()):
                    continue
                found = NAMES[other].search(body.replace(own, ""))
                if found:
                    problems.append(f"{where}: {step.fix} names {found.group()}")
            fix = kb.fixes[step.fix]
            if fix.warnings and "\n1. " in body and body.index("⚠️") > body.index("\n1. "):
                problems.append(f"{where}: {step.fix} warns after its steps")
        final = steps[-1]
        real = [s.fix for s in steps[:-1]]
        if len(real) < MIN_REAL_FIXES:
            problems.append(f"{where}: only {len(real)} fixes before {final.fix}")
        if final.fix != kb.path_for(entry_id, device)[-1]:
            problems.append(f"{where}: the walk ended at {final.fix}, not at the final step")
        problems += ending_problems(engine, where, entry_id, device, lang, final, real)
    assert problems == []


def ending_problems(
    engine: Engine,
    where: str,
    entry_id: str,
    device: Device,
    lang: str,
    final: Step,
    real: list[str],
) -> list[str]:
    """What the final step of an unsolved walk lacks."""
    kb = engine.knowledge
    text = final.reply.text
    problems = []
    if engine.locales.t(lang, "walk.question") in text:
        problems.append(f"{where}: the final step asks whether it fixed it")
    if {Action.SOLVED.value, Action.NEXT.value} & {
        (b.data or "").split("|")[0] for row in final.reply.buttons for b in row
    }:
        problems.append(f"{where}: the final step has Solved or Next")
    summary = html.unescape(text[text.find("<pre>") :]) if "<pre>" in text else ""
    expected = [
        kb.entries[entry_id].title[lang],
        engine.locales.t(lang, f"device_name.{device.value}"),
        *(kb.fixes[f].title[lang] for f in real),
    ]
    missing = [item for item in expected if item not in summary]
    if missing:
        problems.append(f"{where}: the summary lacks {missing}")
    link = kb.fixes[final.fix].link
    if link is not None and link.url[lang] not in urls(final.reply):
        problems.append(f"{where}: no contact link at the end")
    prevention = kb.topics["prevention"].title[lang]
    if prevention in text:
        problems.append(f"{where}: prevention tips at an unsolved end")
    return problems


def test_entries_for_other_devices_walk_nothing(engine: Engine) -> None:
    kb = engine.knowledge
    checked = 0
    for entry_id, device, lang in all_cases(engine):
        entry = kb.entries[entry_id]
        if entry.applies_to(device) or entry.kind is EntryKind.FAQ:
            continue
        checked += 1
        result, steps = walk(engine, entry_id, device, lang)
        assert steps == [] and result.state.walk is None and result.records == ()
        [reply] = result.replies
        assert entry.other_device is not None
        assert html.unescape(reply.text).count(entry.other_device[lang]) == 1
        offered = [b.data for row in reply.buttons for b in row if b.data]
        expected = [
            Callback(Action.DEVICE, entry_id, d).encode() for d in Device if d in entry.devices
        ]
        assert offered == [*expected, Callback(Action.RESTART).encode()]
    assert checked >= 4  # backup_failed on a Mac and on Windows, in two languages


@pytest.mark.parametrize("lang", LANGS)
def test_order_note_is_shown_once_at_the_start(engine: Engine, lang: str) -> None:
    kb = engine.knowledge
    noted = [e for e in kb.entries.values() if e.order_note is not None]
    assert noted
    for entry in noted:
        device = next(d for d in Device if d in entry.devices)
        _, steps = walk(engine, entry.id, device, lang)
        note = entry.order_note
        assert note is not None
        texts = [html.unescape(s.reply.text) for s in steps]
        assert texts[0].count(note[lang]) == 1
        first = texts[0]
        assert first.index(kb.entries[entry.id].title[lang]) < first.index(note[lang])
        assert first.index(note[lang]) < first.index(kb.fixes[steps[0].fix].title[lang])
        assert not any(note[lang] in t for t in texts[1:])
