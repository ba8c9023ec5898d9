"""Questions that matched nothing: what the engine keeps, and `python -m bot unmatched`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import build_engine
from bot.conversation.engine import (
    Context,
    Engine,
    RecordUnmatched,
    Result,
    Tap,
    Text,
)
from bot.conversation.state import UserState
from bot.insights.unmatched import (
    MAX_CHARS,
    NONE_OF_THESE,
    QuestionCount,
    UnmatchedKind,
    UnmatchedQuery,
    format_line,
    most_frequent,
    normalize_question,
)
from bot.storage.store import SqliteStore
from tests.support.paths import ROOT
from tests.support.replies import button

EN = Context(now=1000.0, language_code="en")
NO_MATCH = "my toaster is on fire"
VAGUE = "icloud"  # close to several entries: "did you mean"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(ROOT / "knowledge", ROOT / "locales")


def kept(result: Result) -> list[UnmatchedQuery]:
    return [e.query for e in result.effects if isinstance(e, RecordUnmatched)]


def test_normalize_question_folds_width_case_spaces_and_cuts() -> None:
    assert normalize_question("  ＩＣＬＯＵＤ   won't\n\tSYNC ") == "icloud won't sync"
    assert len(normalize_question("あ" * 500)) == MAX_CHARS


def test_no_match_is_kept_and_the_pick_joins_it(engine: Engine) -> None:
    r = engine.handle(UserState(1), Text("  My Toaster   is on FIRE "), EN)
    [query] = kept(r)
    assert query == UnmatchedQuery(1, NO_MATCH, UnmatchedKind.NO_MATCH, None, 1000.0)
    later = Context(now=1010.0, language_code="en")
    picked = engine.handle(r.state, Tap(button(r.replies[0], "Cannot connect"), 5), later)
    [choice] = kept(picked)
    assert choice == UnmatchedQuery(
        1, NO_MATCH, UnmatchedKind.NO_MATCH, "cannot_connect_icloud", 1000.0
    )
    # the question is answered: a later pick of another common error is not recorded
    again = engine.handle(picked.state, Tap(button(r.replies[0], "Verification"), 5), later)
    assert kept(again) == []


def test_did_you_mean_then_none_of_these_then_a_pick(engine: Engine) -> None:
    r = engine.handle(UserState(2), Text(VAGUE), EN)
    [query] = kept(r)
    assert query.kind is UnmatchedKind.DID_YOU_MEAN and query.choice is None
    none = engine.handle(r.state, Tap(button(r.replies[0], "None of these"), 5), EN)
    [choice] = kept(none)
    assert choice.choice == NONE_OF_THESE and choice.at == query.at
    picked = engine.handle(none.state, Tap(button(none.replies[0], "Verification"), 5), EN)
    [final] = kept(picked)
    assert final.choice == "verification_failed" and final.at == query.at


def test_did_you_mean_pick_is_recorded(engine: Engine) -> None:
    r = engine.handle(UserState(3), Text(VAGUE), EN)
    entry_button = r.replies[0].buttons[0][0]
    assert entry_button.data is not None
    picked = engine.handle(r.state, Tap(entry_button.data, 5), EN)
    [choice] = kept(picked)
    assert choice.kind is UnmatchedKind.DID_YOU_MEAN
    assert choice.choice == entry_button.data.split("|")[1]


def test_recognised_text_keeps_nothing(engine: Engine) -> None:
    r = engine.handle(UserState(4), Text("Verification failed"), EN)
    assert kept(r) == []


def test_most_frequent_groups_by_text_with_choices() -> None:
    queries = [
        UnmatchedQuery(1, "a", UnmatchedKind.NO_MATCH, "x", 1),
        UnmatchedQuery(2, "a", UnmatchedKind.NO_MATCH, "x", 2),
        UnmatchedQuery(3, "a", UnmatchedKind.DID_YOU_MEAN, NONE_OF_THESE, 3),
        UnmatchedQuery(4, "a", UnmatchedKind.NO_MATCH, None, 4),
        UnmatchedQuery(5, "b", UnmatchedKind.NO_MATCH, None, 5),
    ]
    top = most_frequent(queries)
    assert top[0] == QuestionCount(
        "a", 4, (("x", 2), (NONE_OF_THESE, 1)), (("no_match", 3), ("did_you_mean", 1))
    )
    assert [q.text for q in top] == ["a", "b"]
    assert most_frequent(queries, 1) == top[:1]
    assert format_line(top[0]) == "    4  a  →  x 2, none 1"
    assert format_line(top[1]) == "    1  b  →  -"


# --------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_unmatched_lists_the_most_frequent(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"

    async def fill() -> None:
        async with await SqliteStore.open(db) as store:
            for user in range(1, 5):
                await store.save(UserState(user))
                choice = "cannot_connect_icloud" if user < 3 else None
                await store.record_unmatched(
                    UnmatchedQuery(user, "icloud wont load", UnmatchedKind.NO_MATCH, choice, user)
                )
            await store.record_unmatched(
                UnmatchedQuery(1, "写真が消えた", UnmatchedKind.DID_YOU_MEAN, NONE_OF_THESE, 50)
            )

    asyncio.run(fill())
    env = {**os.environ, "BOT_DB_PATH": str(db)}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "unmatched", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    lines = run().splitlines()
    assert lines == [
        "    4  icloud wont load  →  cannot_connect_icloud 2",
        "    1  写真が消えた  →  none 1",
    ]
    [first] = [json.loads(line) for line in run("--json", "--limit", "1").splitlines()]
    assert first == {
        "text": "icloud wont load",
        "count": 4,
        "choices": {"cannot_connect_icloud": 2},
        "kinds": {"no_match": 4},
    }
