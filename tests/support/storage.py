"""Rows for store tests: a full user state, history lines, questions, subscriptions."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from bot.apple_status.report import Subscription
from bot.content.knowledge import Device
from bot.conversation.state import Outcome, OutcomeRecord, UserState, Walk
from bot.insights.unmatched import UnmatchedKind, UnmatchedQuery
from bot.storage.base import Store


def full_state(user_id: int = 42) -> UserState:
    return UserState(
        user_id=user_id,
        lang="en",
        device=Device.MAC,
        walk=Walk(
            entry="sync-stuck",
            device=Device.MAC,
            path=("restart", "sign-out", "reset-keychain"),
            position=1,
            message_id=9001,
            started_at=1_700_000_000.5,
        ),
        pending_entry="photos-missing",
        extra={"subscribed": True, "seen": ["a", "b"], "nested": {"n": 3, "ja": "写真"}},
    )


def record(user_id: int, at: float, outcome: Outcome = Outcome.NEXT) -> OutcomeRecord:
    return OutcomeRecord(user_id, "sync-stuck", Device.IPHONE, "restart", outcome, at)


def query(path: Path, sql: str) -> list[Any]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


async def by_user(store: Store, since: float) -> list[list[OutcomeRecord]]:
    return [lines async for lines in store.outcomes_by_user(since)]


def question(user_id: int, at: float, choice: str | None = None) -> UnmatchedQuery:
    return UnmatchedQuery(user_id, "my toaster is on fire", UnmatchedKind.NO_MATCH, choice, at)


def subscription(
    user_id: int, at: float, services: tuple[str, ...] = ("iCloud Mail",)
) -> Subscription:
    return Subscription(user_id, -user_id, "ja", "mail_not_working", Device.MAC, services, at)
