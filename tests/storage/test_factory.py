"""BOT_DATABASE_URL: read from the environment, redacted, and selecting PostgreSQL end to end."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.config import Settings, redact_url
from bot.errors import ConfigError
from bot.storage.factory import DatabaseUnavailable, open_store_url
from bot.storage.postgres import PostgresStore
from bot.storage.sqlite import SqliteStore
from tests.support.botproc import TOKEN, BotProcess
from tests.support.fakebotapi import FakeBotApi
from tests.support.paths import ROOT
from tests.support.postgres import free_port

URL = "postgresql://bot:hunter2@db.example:5432/bot?sslmode=require"


def test_unset_keeps_sqlite() -> None:
    assert Settings.from_env({}, need_token=False).database_url is None
    assert Settings.from_env({"BOT_DATABASE_URL": " "}, need_token=False).database_url is None


def test_the_url_connects_in_full_but_its_password_is_never_in_repr() -> None:
    settings = Settings.from_env({"BOT_DATABASE_URL": URL}, need_token=False)
    assert str(settings.database_url) == URL
    assert "hunter2" not in repr(settings)
    assert "postgresql://bot:***@db.example:5432/bot?sslmode=require" in repr(settings)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://bot@db/bot", "postgresql://bot@db/bot"),
        ("postgres://bot:p%40ss@db/bot", "postgres://bot:***@db/bot"),
        ("postgresql:///bot?user=bot&password=hunter2", "postgresql:///bot?user=bot&password=***"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_another_scheme_is_refused_without_echoing_the_value() -> None:
    with pytest.raises(ConfigError, match="BOT_DATABASE_URL") as caught:
        Settings.from_env({"BOT_DATABASE_URL": "mysql://bot:hunter2@db/bot"}, need_token=False)
    assert "hunter2" not in str(caught.value)


async def test_open_store_url_picks_the_backend(tmp_path: Path, pg_url: str) -> None:
    sqlite_path = tmp_path / "bot.sqlite3"
    async with await open_store_url(pg_url, sqlite_path) as store:
        assert isinstance(store, PostgresStore)
    assert not sqlite_path.exists()
    async with await open_store_url(None, sqlite_path) as store:
        assert isinstance(store, SqliteStore)
    assert sqlite_path.exists()


async def test_an_unreachable_server_is_one_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://bot:hunter2@127.0.0.1:{free_port()}/bot"
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1") as caught:
        await open_store_url(url, tmp_path / "unused.sqlite3")
    assert "hunter2" not in str(caught.value)


@pytest.mark.slow
async def test_run_refuses_to_start_on_an_unreachable_database_in_one_line(
    tmp_path: Path,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",
            "APPLE_STATUS_URL": "off",
            "BOT_DB_PATH": str(tmp_path / "bot.sqlite3"),
            "BOT_DATABASE_URL": f"postgresql://bot:hunter2@127.0.0.1:{free_port()}/bot",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text and "hunter2" not in text
    assert "error: cannot open the database at postgresql://bot:***@127.0.0.1" in text
    assert not (tmp_path / "bot.sqlite3").exists()


@pytest.mark.slow
async def test_the_bot_keeps_its_users_in_postgresql(
    api: FakeBotApi, tmp_path: Path, pg_url: str
) -> None:
    async with BotProcess(api, tmp_path, BOT_DATABASE_URL=pg_url) as bot:
        api.push_text(5001, "There was an error connecting to the Apple ID server.")
        await api.wait_for_messages(5001, 1)
        await api.wait_idle()
        assert await bot.stop() == 0
    assert not bot.db_path.exists()  # BOT_DB_PATH was not used
    async with await PostgresStore.open(pg_url) as store:
        assert await store.user_count() == 1
        assert (await store.load(5001)).pending_entry is not None  # waiting for the device


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_stats_unmatched_and_match_read_the_postgresql_database(
    tmp_path: Path, pg_url: str
) -> None:
    import json
    import time

    from bot.conversation.state import UserState
    from bot.insights.unmatched import UnmatchedKind, UnmatchedQuery

    async with await PostgresStore.open(pg_url) as store:
        await store.save(UserState(9, lang="en"))
        query = UnmatchedQuery(9, "my fridge is beeping", UnmatchedKind.NO_MATCH, None, time.time())
        await store.record_unmatched(query)
    # No SQLite file anywhere: BOT_DB_PATH points at nothing, the URL is what is read.
    env = {"BOT_DATABASE_URL": pg_url, "BOT_DB_PATH": str(tmp_path / "absent.sqlite3")}
    code, out, err = await run_cli("unmatched", "--json", env=env)
    assert code == 0, err
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["my fridge is beeping"]
    code, out, err = await run_cli("stats", "--days", "7", env=env)
    assert code == 0, err
    code, out, err = await run_cli("match", "Verification failed", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["fixes"]
    assert not (tmp_path / "absent.sqlite3").exists()
