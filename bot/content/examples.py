"""Labelled messages (knowledge/examples.yaml): per entry or topic, how people describe it."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from bot.content.reader import Problems, is_text_list, key_line, line_of

FILE = "examples.yaml"


def load_examples(path: Path, known: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Read examples per id; every id must be `known` (a matched entry or topic).

    A missing file means no examples (a knowledge base works without them).
    """
    if not path.exists():
        return {}
    problems = Problems()
    doc = problems.load_mapping(path)
    problems.raise_if_any()
    assert doc is not None  # load_mapping reports a problem whenever it returns None
    table = doc.get("examples")
    if not isinstance(table, dict):
        problems.add(path, line_of(doc, 1), "expected a mapping 'examples:'")
        problems.raise_if_any()
    assert isinstance(table, dict)
    examples: dict[str, tuple[str, ...]] = {}
    for item_id, texts in table.items():
        line = key_line(table, item_id, line_of(table, 1))
        if str(item_id) not in known:
            problems.add(path, line, f"examples for unknown entry or topic {item_id!r}")
        elif not is_text_list(texts) or not texts:
            problems.add(path, line, f"{item_id}: expected a list of texts")
        else:
            examples[str(item_id)] = tuple(dict.fromkeys(str(t) for t in texts))
    for unknown in sorted(set(doc) - {"examples"}):
        problems.add(path, line_of(doc, 1), f"unknown key {unknown!r}")
    problems.raise_if_any()
    return examples
