"""Outcome statistics: walks rebuilt from history, the report, its text, and `bot stats`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.app import build_engine
from bot.content.knowledge import Device, load_knowledge
from bot.content.locales import load_locales
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Context
from bot.conversation.replies import Reply, ShowStats
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.insights.stats import (
    DAY,
    FixStats,
    build_report,
    render_report,
    walks,
    window_stats,
)
from bot.storage.sqlite import SqliteStore
from tests.support.paths import ROOT

NOW = 1_800_000_000.0
ENTRY = "apple_id_server_error"
IPHONE = Device.IPHONE
EN_CTX = Context(now=NOW, language_code="en")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(ROOT / "knowledge", ROOT / "locales")


def rec(
    user: int, outcome: Outcome, fix: str | None, at: float, entry: str = ENTRY
) -> OutcomeRecord:
    return OutcomeRecord(user, entry, IPHONE, fix, outcome, at)


def walk_lines(user: int, at: float, answers: list[str], end: Outcome) -> list[OutcomeRecord]:
    """A walk that answers Next on every fix but the last, which gets `end`."""
    lines = [rec(user, Outcome.STARTED, answers[0], at)]
    for i, fix in enumerate(answers[:-1], 1):
        lines.append(rec(user, Outcome.NEXT, fix, at + i))
    last = answers[-1]
    if end is Outcome.SOLVED:
        lines.append(rec(user, Outcome.SOLVED, last, at + len(answers)))
    elif end is Outcome.EXHAUSTED:
        lines.append(rec(user, Outcome.NEXT, last, at + len(answers)))
        lines.append(rec(user, Outcome.EXHAUSTED, None, at + len(answers)))
    else:
        lines.append(rec(user, end, last, at + len(answers)))
    return lines


def test_walk_with_back_and_forth_tries_each_fix_once() -> None:
    lines = [
        rec(1, Outcome.STARTED, "a", 1),
        rec(1, Outcome.NEXT, "a", 2),
        rec(1, Outcome.BACK, "b", 3),
        rec(1, Outcome.NEXT, "a", 4),
        rec(1, Outcome.SOLVED, "b", 5),
    ]
    [w] = walks(lines)
    assert w.started and w.tried == ("a", "b") and w.end is Outcome.SOLVED and w.fix == "b"


def test_users_interleaved_in_time_stay_apart() -> None:
    a = walk_lines(1, 10, ["a", "b"], Outcome.SOLVED)
    b = walk_lines(2, 10.5, ["a"], Outcome.ABANDONED)
    traces = walks(sorted(a + b, key=lambda r: r.at))
    by_user = {w.user_id: w for w in traces}
    assert by_user[1].end is Outcome.SOLVED and by_user[1].fix == "b"
    assert by_user[2].end is Outcome.ABANDONED and by_user[2].tried == ()


def test_solved_after_exhausted_is_the_same_walk() -> None:
    lines = walk_lines(1, 10, ["a", "b"], Outcome.EXHAUSTED)
    lines.append(rec(1, Outcome.SOLVED, "b", 20))  # back from the end, then Solved
    [w] = walks(lines)
    assert w.end is Outcome.SOLVED and w.fix == "b" and w.tried == ("a", "b")


def test_a_resumed_walk_is_not_counted_as_started() -> None:
    lines = walk_lines(1, 10, ["a"], Outcome.ABANDONED)
    lines.append(rec(1, Outcome.SOLVED, "a", 30))  # a button on an old message
    first, resumed = walks(lines)
    assert first.started and first.end is Outcome.ABANDONED
    assert not resumed.started and resumed.end is Outcome.SOLVED


def test_window_counts_entries_and_fix_solve_rates() -> None:
    lines = (
        walk_lines(1, NOW - 100, ["a", "b"], Outcome.SOLVED)
        + walk_lines(2, NOW - 200, ["a", "b", "c"], Outcome.EXHAUSTED)
        + walk_lines(3, NOW - 300, ["a"], Outcome.SOLVED)
        + walk_lines(4, NOW - 400, ["a", "b"], Outcome.ABANDONED)
        + walk_lines(5, NOW - 10 * DAY, ["a"], Outcome.SOLVED)  # outside 7 days
    )
    week = window_stats(lines, 7, NOW)
    [entry] = week.entries
    assert (entry.started, entry.solved, entry.exhausted, entry.abandoned) == (4, 2, 1, 1)
    assert entry.solved_at == (("a", 1), ("b", 1))
    fixes = {f.fix: f for f in week.fixes}
    # a: answered in walks 1, 2, 3, 4 (Next, Next, Solved, Next); b: walks 1 and 2 (walk 4
    # left at b without answering); c: walk 2.
    assert (fixes["a"].tried, fixes["a"].solved) == (4, 1)
    assert (fixes["b"].tried, fixes["b"].solved) == (2, 1)
    assert (fixes["c"].tried, fixes["c"].solved, fixes["c"].rate) == (1, 0, 0.0)
    month = window_stats(lines, 30, NOW)
    assert month.total("started") == 5 and month.total("solved") == 3


def test_report_text_in_both_languages_names_entries_and_rates() -> None:
    knowledge = load_knowledge(ROOT / "knowledge")
    locales = load_locales(ROOT / "locales")
    lines = walk_lines(
        1, NOW - 100, ["check_apple_status", "check_internet"], Outcome.SOLVED
    ) + walk_lines(2, NOW - 50, ["check_apple_status"], Outcome.SOLVED)
    report = build_report(lines, NOW)
    [en] = render_report(report, knowledge, locales, "en")
    assert "Outcomes, last 7 days" in en and "last 30 days" in en
    assert knowledge.entries[ENTRY].title["en"] in en
    assert "<code>check_apple_status</code> 1/2 · 50%" in en
    assert "<code>check_internet</code> 1/1 · 100%" in en
    [ja] = render_report(report, knowledge, locales, "ja")
    assert "過去7日間" in ja and knowledge.entries[ENTRY].title["ja"] in ja
    empty = render_report(build_report([], NOW), knowledge, locales, "en")
    assert "No walks in this period." in empty[0]


def test_fix_stats_rate_without_tries_is_zero() -> None:
    assert FixStats("a", 0, 0).rate == 0.0


# --------------------------------------------------------------------------- /stats in the engine


def test_stats_for_an_admin_asks_the_adapter_for_the_report(engine: Engine) -> None:
    admin = Context(now=1000.0, language_code="ja", is_admin=True)
    r = engine.handle(UserState(9), Command("stats"), admin)
    assert r.replies == () and r.effects == (ShowStats("ja", (7, 30)),)
    r = engine.handle(UserState(9), Command("stats", "90"), admin)
    assert r.effects == (ShowStats("ja", (90,)),)


def test_stats_for_anyone_else_is_an_unknown_command(engine: Engine) -> None:
    r = engine.handle(UserState(10), Command("stats"), EN_CTX)
    assert r.effects == ()
    [reply] = r.replies
    assert reply == Reply(engine.locales.t("en", "unknown_command", command="stats"))
    unknown = engine.handle(UserState(10), Command("statz"), EN_CTX)
    assert unknown.replies[0].text.replace("statz", "stats") == reply.text


# --------------------------------------------------------------------------- the CLI


def prepare_db(path: Path) -> None:
    async def fill() -> None:
        async with await SqliteStore.open(path) as store:
            now = time.time()
            for user in range(1, 6):
                lines = walk_lines(
                    user,
                    now - user * 3600,
                    ["check_apple_status", "check_internet"],
                    Outcome.SOLVED if user % 2 else Outcome.EXHAUSTED,
                )
                await store.save(UserState(user), lines)

    asyncio.run(fill())


def run_cli(*args: str, db: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env={**os.environ, "BOT_DB_PATH": str(db), "LANG": "C.UTF-8", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_cli_stats_prints_the_report_and_writes_the_chart(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    prepare_db(db)
    chart = tmp_path / "chart.png"
    done = run_cli("stats", "--chart", str(chart), db=db)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Outcomes, last 7 days" in out and "Outcomes, last 30 days" in out
    assert "<b>" not in out  # plain text in the terminal
    assert "started 5 · solved 3 · every fix tried 2 · abandoned 0" in out
    assert "check_internet 3/5 · 60%" in out
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    ja = run_cli("stats", "--lang", "ja", "--days", "1", db=db)
    assert ja.returncode == 0, ja.stderr
    assert "過去1日間" in ja.stdout and "過去7日間" not in ja.stdout


@pytest.mark.slow
def test_cli_stats_without_a_database_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sqlite3"
    done = run_cli("stats", db=missing)
    assert done.returncode == 1
    assert "no database" in done.stderr and str(missing) in done.stderr
    assert not missing.exists()
