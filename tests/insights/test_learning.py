"""Learning the fix order from outcomes: within a stage only, cautious about small numbers."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.app import build_engine
from bot.content.knowledge import Device, Knowledge
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Context, Tap
from bot.conversation.state import OutcomeRecord, UserState
from bot.insights.learning import (
    MIN_OUTCOMES,
    Tally,
    keeps_stages,
    learned_orders,
    path_for,
    reorder_within_stages,
    score,
)
from bot.storage.sqlite import SqliteStore
from tests.support.paths import ROOT
from tests.support.replies import button

ENTRY = "apple_id_server_error"


@pytest.fixture
def engine() -> Engine:
    return build_engine(ROOT / "knowledge", ROOT / "locales")


def stages(knowledge: Knowledge, path: tuple[str, ...]) -> list[str]:
    return [knowledge.fixes[f].stage for f in path]


def simulate(
    engine: Engine, cures: dict[str, float], users: int, seed: int = 7, first_user: int = 1
) -> list[OutcomeRecord]:
    """Walk `users` simulated users through ENTRY on an iPhone with the real engine.

    Each user's problem is cured by one fix, drawn with the weights in `cures` (the rest of
    the weight: nothing cures it). The user taps Solved on that fix and Next on every other.
    """
    rng = random.Random(seed)
    fixes = list(cures)
    weights = list(cures.values())
    records: list[OutcomeRecord] = []
    now = 1_000_000.0
    for user in range(first_user, first_user + users):
        roll = rng.random()
        cure = None
        for fix, weight in zip(fixes, weights, strict=True):
            if roll < weight:
                cure = fix
                break
            roll -= weight
        ctx = Context(now=now, language_code="en")
        result = engine.handle(UserState(user, device=Device.IPHONE), Command("start", ENTRY), ctx)
        records += result.records
        for _ in range(50):  # a walk is at most as long as its path
            walk = result.state.walk
            if walk is None or walk.done or walk.position == len(walk.path) - 1:
                break  # solved, or at the final step, which hands over (nothing to answer)
            now += 1
            label = "Solved" if walk.fix == cure else "Next fix"
            reply = result.replies[0]
            result = engine.handle(
                result.state, Tap(button(reply, label), 1), Context(now, language_code="en")
            )
            records += result.records
        now += 60
    return records


def test_simulated_outcomes_reorder_a_stage_and_never_cross_a_stage_boundary(
    engine: Engine,
) -> None:
    knowledge = engine.knowledge
    authored = knowledge.path_for(ENTRY, Device.IPHONE)
    # toggle_airplane_mode is the last "easy" fix but cures most; update_os (advanced) cures
    # everyone who reaches it, far more often than any easy or intermediate fix.
    cures = {"toggle_airplane_mode": 0.5, "update_os": 0.3, "check_internet": 0.05}
    records = simulate(engine, cures, users=80)
    orders = learned_orders(records, knowledge)
    learned = orders[(ENTRY, Device.IPHONE)]

    assert sorted(learned) == sorted(authored)
    assert stages(knowledge, learned) == stages(knowledge, authored)  # no fix left its stage
    easy = [f for f in learned if knowledge.fixes[f].stage == "easy"]
    authored_easy = [f for f in authored if knowledge.fixes[f].stage == "easy"]
    assert authored_easy[-1] == "toggle_airplane_mode" and easy[0] == "toggle_airplane_mode"
    advanced = [f for f in learned if knowledge.fixes[f].stage == "advanced"]
    assert advanced[0] == "update_os"
    earlier_stages = [
        i
        for i, f in enumerate(learned)
        if knowledge.fixes[f].stage not in ("advanced", "last_resort")
    ]
    assert learned.index("update_os") > max(earlier_stages)
    # check_internet cures a few, the other basic fixes none: it leads the basic stage.
    assert authored[0] != "check_internet" and learned[0] == "check_internet"


def test_engine_walks_new_users_in_the_learned_order_but_keeps_walks_in_progress(
    engine: Engine,
) -> None:
    authored = engine.knowledge.path_for(ENTRY, Device.IPHONE)
    ctx = Context(now=5.0, language_code="en")
    # A walk that started before anything was learned, two fixes in.
    before = engine.handle(UserState(900, device=Device.IPHONE), Command("start", ENTRY), ctx)
    before = engine.handle(before.state, Tap(button(before.replies[0], "Next fix"), 1), ctx)
    assert before.state.walk is not None and before.state.walk.path == authored

    records = simulate(engine, {"toggle_airplane_mode": 0.9}, users=40)
    engine.learned = learned_orders(records, engine.knowledge)
    learned = engine.path_for(ENTRY, Device.IPHONE)
    assert learned != authored

    fresh = engine.handle(UserState(901, device=Device.IPHONE), Command("start", ENTRY), ctx)
    assert fresh.state.walk is not None and fresh.state.walk.path == learned

    going = engine.handle(before.state, Tap(button(before.replies[0], "Next fix"), 1), ctx)
    assert going.state.walk is not None
    assert going.state.walk.path == authored and going.state.walk.fix == authored[2]

    # A button of an old message resumes in the current order, at the fix it showed.
    old = engine.handle(
        UserState(902, device=Device.IPHONE),
        Tap(f"n|{ENTRY}|i|toggle_airplane_mode", 5),
        ctx,
    )
    walk = old.state.walk
    assert walk is not None and walk.path == learned
    assert walk.path[walk.position - 1] == "toggle_airplane_mode"


def test_a_tally_built_user_by_user_learns_what_the_whole_history_teaches(
    engine: Engine,
) -> None:
    records = simulate(engine, {"toggle_airplane_mode": 0.5, "update_os": 0.3}, users=80)
    tally = Tally()
    for user in sorted({r.user_id for r in records}):
        tally.add_user([r for r in records if r.user_id == user])
    assert tally.lines == len(records)
    assert tally.orders(engine.knowledge) == learned_orders(records, engine.knowledge)
    assert tally.orders(engine.knowledge)  # something was learned


def test_nothing_is_learned_below_the_threshold(engine: Engine) -> None:
    records = simulate(engine, {"toggle_airplane_mode": 1.0}, users=MIN_OUTCOMES - 1)
    assert learned_orders(records, engine.knowledge) == {}
    records += simulate(engine, {"toggle_airplane_mode": 1.0}, users=1, first_user=500)
    assert (ENTRY, Device.IPHONE) in learned_orders(records, engine.knowledge)


def test_one_lucky_fix_does_not_jump_the_queue() -> None:
    stage_of = {"a": "s", "b": "s", "c": "s"}
    # a: solved 40 times in 100 tries; b: solved once in one try; c: never answered.
    order = reorder_within_stages(("a", "b", "c"), stage_of, {"a": 100, "b": 1}, {"a": 40, "b": 1})
    assert order == ("a", "b", "c")
    # with steady evidence, b does move ahead
    order = reorder_within_stages(
        ("a", "b", "c"), stage_of, {"a": 100, "b": 30}, {"a": 40, "b": 24}
    )
    assert order == ("b", "a", "c")
    assert score(1, 1, 0.4) < score(40, 100, 0.4) < score(24, 30, 0.4)


def test_untried_stages_keep_their_authored_order() -> None:
    stage_of = {"a": "s1", "b": "s1", "c": "s2", "d": "s2"}
    order = reorder_within_stages(("a", "b", "c", "d"), stage_of, {"b": 10}, {"b": 9})
    assert order == ("b", "a", "c", "d")


def test_random_outcomes_never_move_a_fix_across_stages(engine: Engine) -> None:
    knowledge = engine.knowledge
    rng = random.Random(3)
    for _ in range(20):
        for device in Device:
            authored = knowledge.path_for(ENTRY, device)
            tried = {f: rng.randint(0, 50) for f in authored}
            solved = {f: rng.randint(0, tried[f]) for f in authored}
            stage_of = {f: knowledge.fixes[f].stage for f in authored}
            order = reorder_within_stages(authored, stage_of, tried, solved)
            assert keeps_stages(knowledge, authored, order)


def test_a_learned_order_that_no_longer_fits_is_ignored(engine: Engine) -> None:
    knowledge = engine.knowledge
    authored = knowledge.path_for(ENTRY, Device.IPHONE)
    crossing = (authored[-1], *authored[:-1])  # a last-resort fix first: crosses stages
    missing = authored[1:]  # a fix was removed from the knowledge base since
    for bad in (crossing, missing, (*authored[:-1], "no_such_fix")):
        assert path_for(knowledge, {(ENTRY, Device.IPHONE): bad}, ENTRY, Device.IPHONE) == authored


@pytest.mark.slow
def test_cli_match_json_shows_the_learned_order(engine: Engine, tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    records = simulate(engine, {"check_apple_id_password": 0.9}, users=40)
    now = time.time()
    shifted = [
        OutcomeRecord(r.user_id, r.entry, r.device, r.fix, r.outcome, now - 1e6 + r.at)
        for r in records
    ]

    async def fill() -> None:
        async with await SqliteStore.open(db) as store:
            for user in {r.user_id for r in shifted}:
                await store.save(UserState(user), [r for r in shifted if r.user_id == user])

    asyncio.run(fill())

    def match(**env: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "match", "Apple ID server error", "--json"],
            cwd=ROOT,
            env={**os.environ, "BOT_DB_PATH": str(db), **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        fixes: list[str] = json.loads(done.stdout)["fixes"]
        return fixes

    authored = list(engine.knowledge.path_for(ENTRY, Device.IPHONE))
    assert match()[0] == "check_apple_id_password"
    assert sorted(match()) == sorted(authored)
    assert match(BOT_LEARNING="off") == authored
    assert match(BOT_DB_PATH=str(tmp_path / "absent.sqlite3")) == authored
    assert not (tmp_path / "absent.sqlite3").exists()
