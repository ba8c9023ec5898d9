"""Normalise user text and knowledge patterns into one comparable form."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from functools import cache

from bot.content.knowledge import Device
from bot.content.spellings import SPELLINGS_PATH, Spellings, load_spellings
from bot.content.text import fold, respace
from bot.matching.japanese import JapaneseReader, default_reader
from bot.matching.romaji import RomajiReader

_ASCII_ALNUM = re.compile("[a-z0-9]")
_NEVER = re.compile("(?!)")
_LONG_VOWEL = "ー"


def _term_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    """Compile terms into one regex that prefers the longest and keeps Latin words whole."""
    parts: list[str] = []
    for term in sorted({t for t in terms if t}, key=lambda t: (-len(t), t)):
        part = re.escape(term)
        if _ASCII_ALNUM.match(term[0]):
            # "i(?<![a-z0-9]i)cloud", not "(?<![a-z0-9])icloud": the same matches, but with
            # every alternative starting with a literal, re skips to the positions holding
            # one of their first characters instead of trying every alternative everywhere
            # (the topics of a text 49 -> ~8 us, normalising it 49 -> 18 us).
            first = re.escape(term[0])
            part = f"{first}(?<![a-z0-9]{first})" + re.escape(term[1:])
        if _ASCII_ALNUM.match(term[-1]):
            part += "(?![a-z0-9])"
        parts.append(part)
    return re.compile("|".join(parts)) if parts else _NEVER


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
        self._subject = _term_pattern(self(t) for t in spellings.subject)
        self._generic = _term_pattern(self(t) for t in [*spellings.strong, *spellings.generic])
        self._foreign = _term_pattern(self(t) for t in spellings.foreign)
        self._ruled_out = _term_pattern(self(t) for t in spellings.ruled_out)
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
        text = respace(self._read_replace.sub(lambda m: self._read_replacements[m.group()], text))
        # Dropped last so rows can tell メール from 止める; dropping it everywhere unifies
        # サーバ/サーバー and ルータ/ルーター on both sides.
        return text.replace(_LONG_VOWEL, "")

    def reads_romaji(self, text: str) -> bool:
        """Tell whether a text is Japanese typed in Latin letters ("icloud ni tsunagaranai")."""
        return self._romaji.looks_romaji(fold(text))

    def normalize(self, text: str) -> str:
        """Return the comparable form of a text (the same as calling the normaliser)."""
        return self(text)

    def _spell(self, folded: str) -> str:
        return respace(self._replace.sub(lambda m: self._replacements[m.group()], folded))

    def _read(self, text: str) -> str:
        return respace(self._reader.reading(text))

    def release_dictionary(self) -> int:
        """Let go of the Japanese dictionary's resident pages (JapaneseReader.release)."""
        return self._reader.release()

    def topics(self, normalized: str) -> frozenset[str]:
        """Return the topics a normalised text mentions (not those it only rules out)."""
        told = self._ruled_out.sub(" ", normalized)
        return frozenset(t for t, pattern in self._topics.items() if pattern.search(told))

    def has_context(self, normalized: str) -> bool:
        """Tell whether a normalised text is about iCloud or Apple rather than something else."""
        if self._names_ours(normalized):
            return True
        if self._foreign.search(normalized):
            return False
        return bool(self.topics(normalized)) or bool(self._subject.search(normalized))

    def specific_length(self, normalized: str) -> int:
        """Return how many characters a text has beyond naming the subject ("iCloudのエラー").

        A text that names a topic is specific however short (a topic may name a device: "new
        iphone"); the others count without spaces, devices, iCloud/Apple and generic words.
        """
        text = self.without_devices(normalized)
        if self.topics(normalized):
            return len(text.replace(" ", ""))
        return len(self._generic.sub("", text).replace(" ", ""))

    def is_foreign(self, normalized: str) -> bool:
        """Tell whether a normalised text names another service or device and not iCloud/Apple."""
        return not self._names_ours(normalized) and bool(self._foreign.search(normalized))

    def _names_ours(self, normalized: str) -> bool:
        """Tell whether a text names iCloud or Apple outside the names of other things: "Apple
        Musicの料金" names Apple only as part of another service (a foreign term)."""
        return bool(self._strong.search(self._foreign.sub(" ", normalized)))

    def detect_device(self, text: str) -> Device | None:
        """Return the one device a text names, or None if it names none or several."""
        normalized = self(text)
        found = [d for d, pattern in self._devices.items() if pattern.search(normalized)]
        return found[0] if len(found) == 1 else None

    def without_devices(self, normalized: str) -> str:
        """Return a normalised text with its device mentions ("on my ipad", "macで") taken out."""
        return respace(self._device_mentions.sub(" ", normalized))


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
