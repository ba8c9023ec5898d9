"""Tests of matching ahead of the turns: concurrent turns' texts scored together, off the loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

import pytest

from bot.content.knowledge import Knowledge, load_knowledge
from bot.matching.ahead import MATCHING_THREADS, MatchAhead
from bot.matching.matcher import Matcher
from bot.matching.semantic import Encoder, FloatArray, default_encoder
from tests.support.paths import ROOT

TEXTS = [
    "my photos stopped syncing",
    "Verification Failed",  # near-verbatim: decided on spelling, never encoded
    "iCloud keeps asking for my password",
    "hello",
    "写真がどこにも出てこないんです",
]


class Calls:
    """The real encoder, recording each call's texts."""

    def __init__(self, inner: Encoder, fail: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.fail = fail
        self.calls: list[list[str]] = []
        self.gate = threading.Event()  # cleared: calls wait in encode until it is set
        self.gate.set()

    def encode(self, texts: Sequence[str]) -> FloatArray:
        self.calls.append(list(texts))
        if not self.gate.wait(timeout=10):
            raise RuntimeError("gate never opened")
        if self.fail:
            raise RuntimeError("encoder broken")
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge(ROOT / "knowledge")


async def test_concurrent_turns_texts_are_shared_out_among_the_matching_threads(
    knowledge: Knowledge,
) -> None:
    encoder = Calls(default_encoder())
    matcher = Matcher(knowledge, encoder=encoder)
    ahead = MatchAhead()
    await asyncio.gather(*(ahead.prepare(matcher, [t]) for t in TEXTS))
    # Five texts, two free threads: three and two (the near-verbatim one never encoded).
    assert sorted(encoder.calls) == sorted([[TEXTS[0], TEXTS[2]], [TEXTS[3], TEXTS[4]]])
    encoder.calls.clear()
    plain = Matcher(knowledge)
    assert [matcher.match(t) for t in TEXTS] == [plain.match(t) for t in TEXTS]
    assert encoder.calls == []  # scored ahead: nothing left to encode

    await ahead.prepare(matcher, ["iCloud storage is almost full"])  # alone: at once
    assert encoder.calls == [["iCloud storage is almost full"]]
    await ahead.prepare(matcher, [])
    assert len(encoder.calls) == 1


async def test_texts_arriving_during_a_batch_make_the_next(knowledge: Knowledge) -> None:
    encoder = Calls(default_encoder())
    encoder.gate.clear()
    matcher = Matcher(knowledge, encoder=encoder)
    ahead = MatchAhead()
    first = asyncio.create_task(ahead.prepare(matcher, [TEXTS[0]]))
    await _until(lambda: len(encoder.calls) == 1)  # the first batch is on a matching thread
    later = [asyncio.create_task(ahead.prepare(matcher, [t])) for t in TEXTS[2:]]
    await _until(lambda: len(encoder.calls) == 2)  # together, on the other thread meanwhile
    encoder.gate.set()
    await asyncio.gather(first, *later)
    assert encoder.calls == [[TEXTS[0]], TEXTS[2:]]


async def test_batches_beyond_the_matching_threads_wait_for_a_free_one(
    knowledge: Knowledge,
) -> None:
    assert MATCHING_THREADS == 2
    encoder = Calls(default_encoder())
    encoder.gate.clear()
    matcher = Matcher(knowledge, encoder=encoder)
    ahead = MatchAhead()
    busy = []
    for text in (TEXTS[0], TEXTS[2]):  # one after the other: a batch each
        busy.append(asyncio.create_task(ahead.prepare(matcher, [text])))
        await _until(lambda: len(encoder.calls) == len(busy))  # that one in the encoder
    later = [asyncio.create_task(ahead.prepare(matcher, [t])) for t in (TEXTS[3], TEXTS[4])]
    await asyncio.sleep(0.05)
    assert sorted(encoder.calls) == sorted([[TEXTS[0]], [TEXTS[2]]])  # the others wait…
    encoder.gate.set()
    await asyncio.gather(*busy, *later)
    assert encoder.calls[2:] == [[TEXTS[3], TEXTS[4]]]  # …and then go together
    assert all(matcher.scored_ahead(t) for t in TEXTS[2:])


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


async def test_a_failure_ahead_is_left_to_the_turn(
    knowledge: Knowledge, caplog: pytest.LogCaptureFixture
) -> None:
    matcher = Matcher(knowledge, encoder=Calls(default_encoder(), fail=True))
    with caplog.at_level(logging.ERROR):
        await MatchAhead().prepare(matcher, [TEXTS[0]])
    assert "could not match 1 text(s) ahead" in caplog.text
    with pytest.raises(RuntimeError, match="encoder broken"):
        matcher.match(TEXTS[0])  # the turn meets the bug itself, as without matching ahead


async def test_a_turn_waits_for_the_scoring_started_when_its_update_came(
    knowledge: Knowledge,
) -> None:
    encoder = Calls(default_encoder())
    matcher = Matcher(knowledge, encoder=encoder)
    ahead = MatchAhead()
    ahead.start(matcher, [TEXTS[0], TEXTS[2]])
    ahead.start(matcher, [TEXTS[0]])  # received twice: scored once
    turn = asyncio.create_task(ahead.prepare(matcher, [TEXTS[0]]))
    await turn
    assert matcher.scored_ahead(TEXTS[0])
    await ahead.prepare(matcher, [TEXTS[2]])  # its own batch, on the other thread
    assert matcher.scored_ahead(TEXTS[2])
    await ahead.prepare(matcher, [TEXTS[2]])  # scored already: nothing to wait for
    assert sorted(encoder.calls) == sorted([[TEXTS[0]], [TEXTS[2]]])  # each once
    cancelled = asyncio.create_task(ahead.prepare(matcher, [TEXTS[3]]))
    waiting = asyncio.create_task(ahead.prepare(matcher, [TEXTS[3]]))
    await asyncio.sleep(0)
    cancelled.cancel()  # one turn gone: the other still gets its scores
    await waiting
    assert matcher.scored_ahead(TEXTS[3])
