"""The replies a walk understands (knowledge/intents.yaml): examples per intent."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from bot.content.reader import Problems, is_text_list, line_of


class Intent(StrEnum):
    """What a typed reply asks the walk to do."""

    NEXT = "next"
    SOLVED = "solved"
    BACK = "back"
    OTHER = "other"  # examples only: never returned


def load_intents(path: Path) -> dict[Intent, tuple[str, ...]]:
    """Read knowledge/intents.yaml: examples per intent, every language together."""
    problems = Problems()
    table = problems.load_section(path, "intents")
    problems.raise_if_any()
    assert table is not None  # load_section reports a problem whenever it returns None
    top = line_of(table, 1)
    examples: dict[Intent, tuple[str, ...]] = {}
    for intent in Intent:
        langs = table.get(intent.value)
        if not isinstance(langs, dict) or not langs:
            problems.add(path, top, f"intent '{intent.value}' is missing")
            continue
        texts: list[str] = []
        for lang, items in langs.items():
            if is_text_list(items):
                texts.extend(items)
            else:
                problems.add(
                    path, line_of(items, line_of(langs, top)), f"{intent}.{lang}: expected texts"
                )
        examples[intent] = tuple(texts)
    for unknown in sorted(set(map(str, table)) - {i.value for i in Intent}):
        problems.add(path, top, f"unknown intent '{unknown}'")
    problems.raise_if_any()
    return examples
