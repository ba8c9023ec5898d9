"""Fixtures shared by the matching tests."""

from __future__ import annotations

import pytest

from bot.matching.semantic import RECENT


@pytest.fixture(autouse=True)
def nothing_embedded_lately() -> None:
    """Start every test with no vector embedded lately (semantic.RECENT, one per process):
    tests that count the encoder's calls must not find another test's vectors."""
    RECENT.clear()
