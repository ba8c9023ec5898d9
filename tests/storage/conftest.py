"""The stores under test: every backend (memory, SQLite, PostgreSQL) for the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage.base import Store
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        async with await SqliteStore.open(tmp_path / "db" / "bot.sqlite3") as s:
            yield s
    elif request.param == "postgres":
        from bot.storage.postgres import PostgresStore

        # A real server (tests/support/postgres.py); skipped where PostgreSQL is not installed.
        url = request.getfixturevalue("pg_url")
        async with await PostgresStore.open(url) as p:
            yield p
    else:
        async with MemoryStore() as m:
            yield m


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.sqlite3"
