"""Normalise user text and knowledge patterns into one comparable form.

The algorithm only: the spelling table it uses is loaded and checked by bot.content.spellings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from bot.content.knowledge import Device
from bot.content.spellings import SPELLINGS_PATH, Spellings, load_spellings
from bot.content.text import fold, respace

# Spellings and load_spellings live in bot.content.spellings; re-exported for older imports.
__all__ = [
    "SPELLINGS_PATH",
    "Normalizer",
    "Spellings",
    "default_normalizer",
    "detect_device",
    "fold",
    "load_spellings",
    "normalize",
]

_ASCII_ALNUM = re.compile("[a-z0-9]")
_NEVER = re.compile("(?!)")
_LONG_VOWEL = "ー"


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


class Normalizer:
    """Normalise texts with one spelling table; the same instance serves both sides."""

    def __init__(self, spellings: Spellings) -> None:
        # A Latin replacement is padded with spaces so it stays a word of its own
        # ("アイクラウドバックアップ" -> "icloud ばっくあっぷ", not "icloudばっくあっぷ" glued to
        # a Latin neighbour); respace drops the padding again next to Japanese.
        self._replacements = {
            variant: f" {canonical} " if _ASCII_ALNUM.match(canonical) else canonical
            for variant, canonical in spellings.replacements.items()
        }
        self._replace = _term_pattern(self._replacements)
        # Context and device words go through the whole pipeline so they look like the texts
        # they are searched in (パソコン is "pc" by then).
        self._strong = _term_pattern(self(t) for t in spellings.strong)
        self._foreign = _term_pattern(self(t) for t in spellings.foreign)
        self._topics = {
            topic: _term_pattern(self(t) for t in terms)
            for topic, terms in spellings.topics.items()
        }
        self._devices = {
            device: _term_pattern(self(t) for t in terms)
            for device, terms in spellings.devices.items()
        }

    @property
    def topic_names(self) -> tuple[str, ...]:
        """Return the names of the topics of the spelling table, in table order."""
        return tuple(self._topics)

    def __call__(self, text: str) -> str:
        """Return the comparable form of a text."""
        text = fold(text)
        text = respace(self._replace.sub(lambda m: self._replacements[m.group()], text))
        # Dropped after the table so rows can tell メール from 止める; dropping it everywhere
        # unifies サーバ/サーバー and ルータ/ルーター on both sides.
        return text.replace(_LONG_VOWEL, "")

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
