"""Text primitives shared by content checks, matching and channels: folding and UTF-16 length."""

from __future__ import annotations

import re
import unicodedata

# Scripts written without spaces between words: kana (with ー), CJK ideographs and 々.
JAPANESE = "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
# Apostrophes join ("can't" is typed "cant"); other punctuation, brackets, symbols, emoji and
# runs of whitespace all become one space.
_APOSTROPHES = str.maketrans("", "", "'’‘`")
_NON_WORD = re.compile(r"[\W_]+")
# Japanese has no word spaces, so a space next to it is noise ("iCloud に 接続" = "iCloudに接続").
_SPACE_NEAR_JAPANESE = re.compile(f" (?=[{JAPANESE}])|(?<=[{JAPANESE}]) ")
_SPACES = re.compile(" {2,}")


def to_hiragana(text: str) -> str:
    """Return the text with katakana turned into hiragana (ー and other characters kept)."""
    return text.translate(_KATAKANA_TO_HIRAGANA)


def fold(text: str) -> str:
    """Unify width, case, kana and punctuation of a text, without the spelling table."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_KATAKANA_TO_HIRAGANA)
    return respace(_NON_WORD.sub(" ", text.translate(_APOSTROPHES)))


def respace(text: str) -> str:
    """Collapse runs of spaces and drop those next to Japanese."""
    return _SPACE_NEAR_JAPANESE.sub("", _SPACES.sub(" ", text)).strip()


def utf16_len(text: str) -> int:
    """Return the length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2
