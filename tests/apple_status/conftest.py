"""The feed server fixture of the status tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.status_feeds import FeedServer


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server
