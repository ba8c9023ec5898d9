"""The bigram prefilter that keeps matching fast on knowledge bases of thousands of entries."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.synthetic import generated_knowledge
from bot.app import load_content
from bot.content.knowledge import Knowledge
from bot.matching import matcher as matcher_module
from bot.matching.matcher import PREFILTER_MIN_ENTRIES, Matcher
from bot.matching.prefilter import BigramIndex
from tests.matching.test_matcher import load_queries
from tests.support.paths import ROOT


def index_of(groups: list[list[str]]) -> BigramIndex:
    texts = [t for g in groups for t in g]
    starts = np.cumsum([0, *[len(g) for g in groups[:-1]]], dtype=np.intp)
    return BigramIndex(texts, starts)


def test_the_group_holding_the_text_comes_first() -> None:
    index = index_of([["printer offline"], ["icloud sync stuck", "photos"], ["mail"]])
    assert index.best_groups(["my icloud sync is stuck"], 1).tolist() == [1]


def test_words_in_another_order_still_share_their_bigrams() -> None:
    index = index_of([["sync stuck icloud"], ["printer is offline today"]])
    assert index.best_groups(["icloud is stuck on sync"], 1).tolist() == [0]


def test_asking_for_more_groups_than_there_are_returns_all() -> None:
    index = index_of([["a"], ["b"]])
    assert index.best_groups([""], 5).tolist() == [0, 1]


@pytest.fixture(scope="module")
def large() -> Knowledge:
    content = load_content(ROOT / "knowledge", ROOT / "locales")
    return generated_knowledge(content.knowledge, PREFILTER_MIN_ENTRIES + 100)


def test_a_large_knowledge_base_decides_like_scoring_every_entry(
    large: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = [text for text, _ in load_queries()]
    filtered = Matcher(large).match_many(queries)
    monkeypatch.setattr(matcher_module, "PREFILTER_MIN_ENTRIES", len(large.entries))
    exhaustive = Matcher(large).match_many(queries)
    differing = [
        (a.query, a.entry, b.entry)
        for a, b in zip(filtered, exhaustive, strict=True)
        if a.entry != b.entry
    ]
    assert len(differing) <= len(queries) // 50, differing


def test_the_real_knowledge_base_is_scored_in_full(large: Knowledge) -> None:
    content = load_content(ROOT / "knowledge", ROOT / "locales")
    assert len(content.knowledge.entries) <= PREFILTER_MIN_ENTRIES
    assert Matcher(content.knowledge)._prefilter is None
    assert Matcher(large)._prefilter is not None
