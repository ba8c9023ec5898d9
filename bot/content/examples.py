"""Labelled messages (knowledge/examples.yaml): per entry or topic, how people describe it."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from bot.content.reader import Problems, is_text_list, key_line

FILE = "examples.yaml"


def read_examples(
    problems: Problems, path: Path, known: Collection[str]
) -> dict[str, tuple[str, ...]]:
    """Read examples per id, reporting problems to `problems`; every id must be `known` (a
    matched entry or topic). A missing file means no examples (a base works without them)."""
    if not path.exists():
        return {}
    table = problems.load_section(path, "examples")
    examples: dict[str, tuple[str, ...]] = {}
    for item_id, texts in (table or {}).items():
        line = key_line(table, item_id)
        if item_id not in known:
            problems.add(path, line, f"examples for unknown entry or topic {item_id!r}")
        elif not is_text_list(texts) or not texts:
            problems.add(path, line, f"{item_id}: expected a list of texts")
        else:
            examples[item_id] = tuple(dict.fromkeys(str(t) for t in texts))
    return examples
