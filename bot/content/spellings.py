"""Load and check knowledge/spellings.yaml: the spelling table normalisation uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.content.knowledge import Device
from bot.content.reader import Map, Problems, Reader, is_text_list, line_of
from bot.content.text import fold

SPELLINGS_PATH = Path(__file__).resolve().parents[2] / "knowledge" / "spellings.yaml"

_SECTIONS = frozenset({"spellings", "english", "context", "topics", "devices"})
_CONTEXT_KINDS = ("strong", "subject", "foreign", "generic", "ruled_out")


@dataclass(frozen=True, slots=True)
class Spellings:
    """The tables of knowledge/spellings.yaml, with every key already folded."""

    replacements: Mapping[str, str]
    strong: tuple[str, ...] = ()
    # Words of this bot's subject that name no iCloud problem (対処法, fixes): context, no topic.
    subject: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()
    # Words that name the subject without saying anything about it (error, problem).
    generic: tuple[str, ...] = ()
    # Phrases that name a topic only to rule it out ("容量は空いてる"): not read as naming it.
    ruled_out: tuple[str, ...] = ()
    topics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    devices: Mapping[Device, tuple[str, ...]] = field(default_factory=dict)
    # Short English words that look like romaji ("to", "be"): never read as Japanese.
    english: tuple[str, ...] = ()


class _Replacements:
    """Folded variant → canonical form, refusing a variant listed twice with another meaning."""

    def __init__(self, r: Reader) -> None:
        self.r = r
        self.table: dict[str, str] = {}
        self.where_first: dict[str, str] = {}

    def add(self, variant: str, canonical: str, where: str, line: int) -> None:
        key = fold(variant)
        if not key:
            self.r.problem(line, f"{where}: {variant!r} is empty once folded")
        elif key in self.where_first and self.table[key] != canonical:
            self.r.problem(
                line, f"{where}: {variant!r} is already listed in {self.where_first[key]}"
            )
        else:
            self.table[key] = canonical
            self.where_first.setdefault(key, where)


def _section(r: Reader, doc: Map, name: str) -> dict[Any, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        r.problem(line_of(doc, 1), f"{name}: expected a mapping")
        return {}
    return value


def _read_replacements(r: Reader, doc: Map) -> dict[str, str]:
    replacements = _Replacements(r)
    spellings = _section(r, doc, "spellings")
    for canonical, variants in spellings.items():
        where = f"spellings.{canonical}"
        if not isinstance(canonical, str) or not is_text_list(variants):
            r.problem(line_of(spellings, 1), f"{where}: expected a list")
            continue
        for variant in variants:
            replacements.add(
                variant, fold(canonical), where, line_of(variants, line_of(spellings, 1))
            )
    return replacements.table


def _word_lists(r: Reader, doc: Map, section: str) -> dict[str, tuple[str, ...]]:
    """Read a section of name: [words] rows, reporting malformed ones."""
    value = _section(r, doc, section)
    lists: dict[str, tuple[str, ...]] = {}
    for name, words in value.items():
        if not isinstance(name, str) or not is_text_list(words):
            r.problem(line_of(value, 1), f"{section}.{name}: expected a list of words")
            continue
        lists[name] = tuple(words)
    return lists


def load_spellings(path: Path = SPELLINGS_PATH) -> Spellings:
    """Load and check a spelling table; raise KnowledgeError naming file and line."""
    problems = Problems()
    doc = problems.load_mapping(path)
    problems.raise_if_any()
    assert doc is not None  # load_mapping reports every other outcome
    r = problems.reader(path)
    for key in doc:
        if key not in _SECTIONS:
            r.problem(line_of(doc, 1), f"unknown key {key!r}")
    replacements = _read_replacements(r, doc)
    context = _word_lists(r, doc, "context")
    for kind in context:
        if kind not in _CONTEXT_KINDS:
            r.problem(
                line_of(doc.get("context"), 1),
                f"context.{kind}: expected one of {', '.join(_CONTEXT_KINDS)}",
            )
    topics = _word_lists(r, doc, "topics")
    devices = _word_lists(r, doc, "devices")
    for name in devices:
        if name not in set(Device):
            r.problem(
                line_of(doc.get("devices"), 1), f"devices.{name}: expected iphone, mac or windows"
            )
    english = doc.get("english", [])
    if english and not is_text_list(english):
        r.problem(line_of(doc, 1), "english: expected a list of words")
        english = []
    problems.raise_if_any()
    return Spellings(
        replacements,
        strong=context.get("strong", ()),
        subject=context.get("subject", ()),
        foreign=context.get("foreign", ()),
        generic=context.get("generic", ()),
        ruled_out=context.get("ruled_out", ()),
        topics=topics,
        devices={Device(name): words for name, words in devices.items()},
        english=tuple(english),
    )
