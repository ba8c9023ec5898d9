"""open_store(url): which backend a URL names, and the URLs it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conversation.state import UserState
from bot.errors import ConfigError
from bot.storage import open_store
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import SqliteStore


@pytest.mark.parametrize("prefix", ["sqlite:", ""])
async def test_a_path_or_sqlite_url_opens_that_file(tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "sub" / "bot.sqlite3"
    async with await open_store(f"{prefix}{path}") as store:
        assert isinstance(store, SqliteStore)
        await store.save(UserState(7, lang="en"))
    assert path.exists()
    async with await open_store(path) as again:
        assert (await again.load(7)).lang == "en"


async def test_memory_url_is_a_fresh_memory_store() -> None:
    async with await open_store("memory:") as store:
        assert isinstance(store, MemoryStore)
        assert await store.user_count() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://bot@db/bot", "unknown storage 'mysql'"),
        ("memory:extra", "unknown storage 'memory'"),
        ("sqlite:", "needs a file path"),
    ],
)
async def test_urls_it_cannot_use_are_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await open_store(url)


async def test_a_postgresql_url_opens_postgresql(pg_url: str) -> None:
    from bot.storage.postgres import PostgresStore

    async with await open_store(pg_url) as store:
        assert isinstance(store, PostgresStore)
        assert await store.user_count() == 0


async def test_postgresql_url_opens_the_shared_store(pg_url: str) -> None:
    from bot.storage.postgres import PostgresStore

    async with await open_store(pg_url) as store:
        assert isinstance(store, PostgresStore) and store.shared
        await store.save(UserState(7, lang="ja"))
    async with await open_store(pg_url.replace("postgresql://", "postgres://", 1)) as again:
        assert (await again.load(7)).lang == "ja"
