"""Normalise user text and knowledge patterns into one comparable form."""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bot.content.knowledge import Device, line_of, load_yaml
from bot.errors import KnowledgeError, Problem
from bot.matching.japanese import JAPANESE_CHARS, JapaneseReader, default_reader, to_hiragana
from bot.matching.romaji import RomajiReader

SPELLINGS_PATH = Path(__file__).resolve().parents[2] / "knowledge" / "spellings.yaml"

# Apostrophes join ("can't" is typed "cant"); other punctuation, brackets, symbols, emoji and
# runs of whitespace all become one space.
_APOSTROPHES = str.maketrans("", "", "'’‘`")
_NON_WORD = re.compile(r"[\W_]+")
# Japanese has no word spaces, so a space next to it is noise ("iCloud に 接続" = "iCloudに接続").
_SPACE_NEAR_JAPANESE = re.compile(f" (?=[{JAPANESE_CHARS}])|(?<=[{JAPANESE_CHARS}]) ")
_SPACES = re.compile(" {2,}")
_ASCII_ALNUM = re.compile("[a-z0-9]")
_NEVER = re.compile("(?!)")
_LONG_VOWEL = "ー"
_SECTIONS = {"spellings", "english", "context", "topics", "devices"}
_CONTEXT_KINDS = ("strong", "foreign")


def fold(text: str) -> str:
    """Unify width, case, kana and punctuation of a text, without the spelling table."""
    text = to_hiragana(unicodedata.normalize("NFKC", text).casefold())
    return _respace(_NON_WORD.sub(" ", text.translate(_APOSTROPHES)))


def _respace(text: str) -> str:
    return _SPACE_NEAR_JAPANESE.sub("", _SPACES.sub(" ", text)).strip()


def _term_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    """Compile terms into one regex that prefers the longest and keeps Latin words whole."""
    parts: list[str] = []
    for term in sorted({t for t in terms if t}, key=lambda t: (-len(t), t)):
        part = re.escape(term)
        if _ASCII_ALNUM.match(term[0]):
            part = "(?<![a-z0-9])" + part
        if _ASCII_ALNUM.match(term[-1]):
            part += "(?![a-z0-9])"
        parts.append(part)
    return re.compile("|".join(parts)) if parts else _NEVER


@dataclass(frozen=True, slots=True)
class Spellings:
    """The tables of knowledge/spellings.yaml, with every key already folded."""

    replacements: Mapping[str, str]
    strong: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()
    topics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    devices: Mapping[Device, tuple[str, ...]] = field(default_factory=dict)
    english: tuple[str, ...] = ()


class Normalizer:
    """Normalise texts with one spelling table; the same instance serves both sides.

    The steps, in order: fold (width, case, kana, punctuation); romaji messages to kana; the
    spelling table on what was typed (あいくらうど -> icloud); Japanese words to their readings
    (bot/matching/japanese.py); the spelling table again on the readings, so that an inflected
    variant (つながんない) meets its row (つながらない); ー dropped.
    """

    def __init__(self, spellings: Spellings, reader: JapaneseReader | None = None) -> None:
        self._reader = reader if reader is not None else default_reader()
        self._spellings = spellings
        # A Latin replacement is padded with spaces so it stays a word of its own
        # ("アイクラウドバックアップ" -> "icloud ばっくあっぷ", not "icloudばっくあっぷ" glued to
        # a Latin neighbour); _respace drops the padding again next to Japanese.
        self._replacements = {
            variant: _padded(canonical) for variant, canonical in spellings.replacements.items()
        }
        self._replace = _term_pattern(self._replacements)
        # The same rows in the form the readings step gives them (variant and canonical both
        # read), for the second pass: つながんない reads つながらない only after the first.
        read_rows: dict[str, str] = {}
        for variant, canonical in spellings.replacements.items():
            key, value = self._read(variant), self._read(canonical)
            if key and key != value:
                read_rows.setdefault(key, _padded(value))
        self._read_replacements = read_rows
        self._read_replace = _term_pattern(read_rows)
        latin = [w for row in spellings.replacements.items() for w in row if _is_latin(w)]
        devices = [w for words in spellings.devices.values() for w in words if _is_latin(w)]
        self._romaji = RomajiReader(spellings.english, [*latin, *devices])
        # Context and device words go through the whole pipeline so they look like the texts
        # they are searched in (パソコン is "pc" by then).
        self._strong = _term_pattern(self(t) for t in spellings.strong)
        self._foreign = _term_pattern(self(t) for t in spellings.foreign)
        self._topics = {
            topic: _term_pattern(self(t) for t in terms)
            for topic, terms in spellings.topics.items()
        }
        device_words = {
            device: [self(t) for t in terms] for device, terms in spellings.devices.items()
        }
        self._devices = {device: _term_pattern(words) for device, words in device_words.items()}
        self._device_mentions = _device_mention_pattern(
            w for words in device_words.values() for w in words
        )

    def with_english(self, words: Iterable[str]) -> Normalizer:
        """Return a normaliser that also knows these words as English, not romaji."""
        twin = copy.copy(self)
        twin._romaji = self._romaji.with_english(words)
        return twin

    @property
    def topic_names(self) -> tuple[str, ...]:
        """Return the names of the topics of the spelling table, in table order."""
        return tuple(self._topics)

    def __call__(self, text: str) -> str:
        """Return the comparable form of a text."""
        text = self._read(self._spell(self._romaji.to_kana(fold(text))))
        text = _respace(self._read_replace.sub(lambda m: self._read_replacements[m.group()], text))
        # Dropped last so rows can tell メール from 止める; dropping it everywhere unifies
        # サーバ/サーバー and ルータ/ルーター on both sides.
        return text.replace(_LONG_VOWEL, "")

    def normalize(self, text: str) -> str:
        """Return the comparable form of a text (the same as calling the normaliser)."""
        return self(text)

    def _spell(self, folded: str) -> str:
        return _respace(self._replace.sub(lambda m: self._replacements[m.group()], folded))

    def _read(self, text: str) -> str:
        return _respace(self._reader.reading(text))

    def topics(self, normalized: str) -> frozenset[str]:
        """Return the topics a normalised text mentions."""
        return frozenset(t for t, pattern in self._topics.items() if pattern.search(normalized))

    def has_context(self, normalized: str) -> bool:
        """Tell whether a normalised text is about iCloud or Apple rather than something else."""
        if self._strong.search(normalized):
            return True
        return bool(self.topics(normalized)) and not self._foreign.search(normalized)

    def detect_device(self, text: str) -> Device | None:
        """Return the one device a text names, or None if it names none or several."""
        normalized = self(text)
        found = [d for d, pattern in self._devices.items() if pattern.search(normalized)]
        return found[0] if len(found) == 1 else None

    def without_devices(self, normalized: str) -> str:
        """Return a normalised text with its device mentions ("on my ipad", "macで") taken out."""
        return _respace(self._device_mentions.sub(" ", normalized))


def _is_latin(word: str) -> bool:
    return all(_ASCII_ALNUM.match(c) or c == " " for c in word)


def _padded(canonical: str) -> str:
    return f" {canonical} " if _ASCII_ALNUM.match(canonical) else canonical


# A device mention is taken out whole: the preposition and article before it in English ("on my
# ipad"), its model after it ("iphone 15 pro max", "macbook air"), the particle after it in
# Japanese ("macbookで", "iphoneの"). What remains is the problem, which then scores like the same
# problem without a device; the device itself is read by detect_device.
_LEAD = r"(?:(?:on|with|from|in|using|via|for|through) )?(?:(?:my|the|a|an|our|your|this) )?"
_MODEL = r"(?: ?(?:[0-9]+|pro|max|plus|mini|air|ultra|studio|touch|se|home|premium))*"
_PARTICLE = "(?:では|でも|から|で|の|に|が|は|を|と|も)?"


def _device_mention_pattern(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))
    if not alternatives:
        return _NEVER
    device = f"(?:{alternatives}){_MODEL}"
    return re.compile(f"(?<![a-z0-9]){_LEAD}{device}(?: {device})*(?![a-z0-9]){_PARTICLE}")


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return value
    return None


def load_spellings(path: Path = SPELLINGS_PATH) -> Spellings:
    """Load and check a spelling table; raise KnowledgeError naming file and line."""
    problems: list[Problem] = []
    doc = load_yaml(path, problems)
    if problems:
        raise KnowledgeError(problems)
    file = str(path)
    if not isinstance(doc, dict):
        raise KnowledgeError([Problem(file, 1, "expected a mapping at the top level")])
    for key in doc:
        if key not in _SECTIONS:
            problems.append(Problem(file, line_of(doc, 1), f"unknown key {key!r}"))

    replacements: dict[str, str] = {}
    where_first: dict[str, str] = {}

    def add(variant: str, canonical: str, where: str, line: int) -> None:
        key = fold(variant)
        if not key:
            problems.append(Problem(file, line, f"{where}: {variant!r} is empty once folded"))
        elif key in where_first and replacements[key] != canonical:
            problems.append(
                Problem(file, line, f"{where}: {variant!r} is already listed in {where_first[key]}")
            )
        else:
            replacements[key] = canonical
            where_first.setdefault(key, where)

    spellings = doc.get("spellings", {})
    if not isinstance(spellings, dict):
        problems.append(Problem(file, line_of(doc, 1), "spellings: expected a mapping"))
        spellings = {}
    for canonical, variants in spellings.items():
        where = f"spellings.{canonical}"
        items = _strings(variants)
        if not isinstance(canonical, str) or items is None:
            problems.append(Problem(file, line_of(spellings, 1), f"{where}: expected a list"))
            continue
        for variant in items:
            add(variant, fold(canonical), where, line_of(variants, line_of(spellings, 1)))

    english = doc.get("english", [])
    if english and _strings(english) is None:
        problems.append(Problem(file, line_of(doc, 1), "english: expected a list of words"))
        english = []

    context = _word_lists(doc, "context", file, problems)
    for kind in context:
        if kind not in _CONTEXT_KINDS:
            problems.append(
                Problem(
                    file,
                    line_of(doc.get("context"), 1),
                    f"context.{kind}: expected strong or foreign",
                )
            )
    topics = _word_lists(doc, "topics", file, problems)
    devices = _word_lists(doc, "devices", file, problems)
    for name in devices:
        if name not in set(Device):
            problems.append(
                Problem(
                    file,
                    line_of(doc.get("devices"), 1),
                    f"devices.{name}: expected iphone, mac or windows",
                )
            )
    if problems:
        raise KnowledgeError(problems)
    return Spellings(
        replacements,
        strong=context.get("strong", ()),
        foreign=context.get("foreign", ()),
        topics=topics,
        devices={Device(name): words for name, words in devices.items()},
        english=tuple(english),
    )


def _word_lists(
    doc: Mapping[str, Any], section: str, file: str, problems: list[Problem]
) -> dict[str, tuple[str, ...]]:
    """Read a section of name: [words] rows, recording malformed ones."""
    value = doc.get(section, {})
    if not isinstance(value, dict):
        problems.append(Problem(file, line_of(doc, 1), f"{section}: expected a mapping"))
        return {}
    lists: dict[str, tuple[str, ...]] = {}
    for name, words in value.items():
        items = _strings(words)
        if not isinstance(name, str) or items is None:
            problems.append(
                Problem(file, line_of(value, 1), f"{section}.{name}: expected a list of words")
            )
            continue
        lists[name] = tuple(items)
    return lists


@cache
def default_normalizer() -> Normalizer:
    """Return the normaliser built from the project's knowledge/spellings.yaml."""
    return Normalizer(load_spellings(SPELLINGS_PATH))


def normalize(text: str) -> str:
    """Return the comparable form of a text, using the project's spelling table."""
    return default_normalizer()(text)


def detect_device(text: str) -> Device | None:
    """Return the one device a text names (iPhone, Mac, Windows), or None."""
    return default_normalizer().detect_device(text)
