"""The engine over the real knowledge base, shared by the conversation tests."""

from __future__ import annotations

import pytest

from bot.app import build_engine
from bot.conversation.engine import Engine
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(ROOT / "knowledge", ROOT / "locales")
