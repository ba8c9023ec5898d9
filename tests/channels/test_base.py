"""The channel port: message limits counted as the channel counts, effects by their type."""

from __future__ import annotations

import pytest

from bot.app import build_engine
from bot.channels.base import DeliveryError, EffectHandlers, MessageLimits, Turn, utf16_units
from bot.channels.telegram.adapter import TELEGRAM_LIMITS
from bot.conversation.replies import CopyToUser, Forget, Reload
from bot.conversation.state import UserState
from tests.support.paths import KNOWLEDGE, LOCALES


def test_telegram_counts_utf16_units() -> None:
    assert utf16_units("aあ😀") == 4  # the emoji is a surrogate pair
    assert TELEGRAM_LIMITS.fits("😀" * 2048)
    assert not TELEGRAM_LIMITS.fits("😀" * 2049)
    assert TELEGRAM_LIMITS.fits("あ" * 4096)
    assert MessageLimits().fits("x" * 1_000_000)  # the terminal's: none


async def test_effects_go_to_the_handler_of_their_type(caplog: pytest.LogCaptureFixture) -> None:
    engine = build_engine(KNOWLEDGE, LOCALES)
    turn = Turn(1, 1, engine, UserState(1))
    seen: list[str] = []

    async def on_reload(effect: Reload, turn: Turn) -> None:
        seen.append(effect.lang)

    async def on_forget(effect: Forget, turn: Turn) -> None:
        raise DeliveryError("blocked", permanent=True)

    handlers = EffectHandlers()
    handlers.register(Reload, on_reload)
    handlers.register(Forget, on_forget)
    await handlers.apply(Reload("ja"), turn)
    await handlers.apply(Forget(engine.locales.t("en", "forget.done")), turn)  # logged, not raised
    await handlers.apply(CopyToUser(), turn)  # nobody handles it: logged
    assert seen == ["ja"]
    assert handlers.handles(Reload) and not handlers.handles(CopyToUser)
    assert "effect Forget failed: blocked" in caplog.text
    assert "no handler for effect CopyToUser" in caplog.text
