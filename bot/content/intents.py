"""The replies a walk understands (knowledge/intents.yaml): examples per intent."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from bot.content.knowledge import line_of, load_yaml
from bot.errors import KnowledgeError, Problem


class Intent(StrEnum):
    """What a typed reply asks the walk to do."""

    NEXT = "next"
    SOLVED = "solved"
    BACK = "back"
    OTHER = "other"  # examples only: never returned


def load_intents(path: Path) -> dict[Intent, tuple[str, ...]]:
    """Read knowledge/intents.yaml: examples per intent, every language together."""
    problems: list[Problem] = []
    data = load_yaml(path, problems)
    if problems:
        raise KnowledgeError(problems)
    table = data.get("intents") if isinstance(data, Mapping) else None
    if not isinstance(table, Mapping):
        raise KnowledgeError([Problem(str(path), line_of(data), "expected a mapping 'intents:'")])
    examples: dict[Intent, tuple[str, ...]] = {}
    for intent in Intent:
        langs = table.get(intent.value)
        if not isinstance(langs, Mapping) or not langs:
            where = line_of(table)
            problems.append(Problem(str(path), where, f"intent '{intent.value}' is missing"))
            continue
        texts: list[str] = []
        for lang, items in langs.items():
            if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
                problems.append(
                    Problem(str(path), line_of(langs), f"{intent.value}.{lang}: expected texts")
                )
                continue
            texts.extend(items)
        examples[intent] = tuple(texts)
    unknown = sorted(set(map(str, table)) - {i.value for i in Intent})
    problems.extend(Problem(str(path), line_of(table), f"unknown intent '{u}'") for u in unknown)
    if problems:
        raise KnowledgeError(problems)
    return examples
