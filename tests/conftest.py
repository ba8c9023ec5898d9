"""Shared fixtures: the fake Bot API server and the real bot process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.botproc import TOKEN, BotProcess
from tests.support.fakebotapi import FakeBotApi
from tests.support.postgres import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # a throwaway PostgreSQL server, a schema per test

# The bot opts in to PTB 22's timedelta durations; tests that use PTB in-process do the same.
os.environ.setdefault("PTB_TIMEDELTA", "true")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=TOKEN) as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotApi, tmp_path: Path) -> AsyncIterator[BotProcess]:
    async with BotProcess(api, tmp_path) as proc:
        yield proc
