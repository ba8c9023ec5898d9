"""Read Japanese as words: each Japanese run of a text becomes the hiragana of its words' readings.

Kanji and kana spellings of one word then meet (検証 and けんしょう are both けんしょう;
接続できない and せつぞくできない both せつぞくできない), and so does the spoken つながんない
with 繋がらない: the matcher's character scorers compare what people say, not how they typed it.

SudachiPy (Apache-2.0) analyses the text with the dictionary of `sudachidict_core`
(Apache-2.0), which ships inside its PyPI wheel: nothing is downloaded at run time. The
dictionary (193 MB) is memory-mapped, read-only: opening it costs 30-80 ms once per process,
and the pages it touches count in the resident size as file-backed memory (clean pages the
kernel can drop under pressure, shared by every process that maps the file). Opening it reads
its last 72 MB through; those pages are let go right after (`release_pages`), and come back
one by one as words are looked up: ~105 MB for the knowledge's patterns and examples, let go
again once the indexes are built (`matcher.settle`); ~100 MB after a burst of 500 users'
texts, 130 MB after thousands of distinct texts (the connection-cost matrix alone is 71 MB,
read at scattered places). The process's own, anonymous memory grows by 3-6 MB.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from functools import cache, lru_cache
from pathlib import Path

from sudachipy import Dictionary, Morpheme, SplitMode

from bot.content.text import JAPANESE, to_hiragana

logger = logging.getLogger(__name__)

# Scripts written without spaces between words: kana (with ー), CJK ideographs and 々.
_JAPANESE_RUN = re.compile(f"[{JAPANESE}]+")
_KANA = re.compile("[\u3041-\u3096\u30a1-\u30faー]+")

# Split mode C keeps compounds whole (機種変更, not 機種 + 変更). Readings are the same in every
# mode (a compound reads as its parts do), and on the labelled set modes A, B and C recognised
# exactly the same queries; C gives the fewest, longest units to cache.
SPLIT_MODE = SplitMode.C
# Every word reads as written, not as its lemma: a hiragana-only text is often analysed into
# other words (せってい as せる + て + いる, おきました as 置く), and their lemmas then part
# from the kanji text's (設定, 起きる), while the readings of what was written still meet. On
# the spelling pairs of tests/matching/test_normalize.py, lemma readings for verbs, adjectives
# and auxiliaries parted 9 pairs (surface readings: 1), for about as many labelled queries won
# as lost; inflections differ in a kana or two, which the character scorers absorb. The one
# inflections folded are the spoken contraction of ら/る into ん (つながんない, わかんない) and
# the Kansai negation へん (つながらへん).
_VERB = "動詞"
_CONTRACTED = "ン"
# Kansai negation: つながらへん is つながらない. Only as an auxiliary after a verb (the analyser
# tags it so), never the noun へん (変).
_AUXILIARY = "助動詞"
_DIALECT_NEGATION = frozenset({"ヘン", "ヒン"})
_NEGATION = "ナイ"
# Symbols have placeholder readings (キゴウ for a space): they keep their surface.
_AS_WRITTEN = frozenset({"補助記号", "記号", "空白"})
# Distinct Japanese runs remembered with their reading: patterns, context words and the usual
# questions are read once. A run costs ~15 µs to analyse and ~200 bytes to keep.
CACHE_RUNS = 8192
# Every this many runs analysed, the dictionary's pages are let go again (`release`: ~3 ms, and
# the pages mapped back from the page cache as the next texts need them: 8 µs a text on
# average): what stays resident is what the latest texts read, instead of everything ever read
# (after 3,000 distinct users' texts: RSS 240 MB at most, against 253 and growing).
RELEASE_EVERY = 500


# The packaged dictionary: sudachidict_<DICTIONARY>. "small" read the labelled set and the
# spelling pairs the same in a trial and touches 45-75 MB less; "core" is what issue 11 chose.
DICTIONARY = "core"


class JapaneseReader:
    """One Sudachi tokenizer, created once, turning the Japanese runs of texts into readings."""

    def __init__(self, release_every: int = RELEASE_EVERY) -> None:
        self._release_every = release_every
        self._dictionary = Dictionary(dict=DICTIONARY)
        self.release()
        self._tokenizer = self._dictionary.tokenizer(SPLIT_MODE)
        # A Sudachi tokenizer is not reentrant; matching may run on a worker thread.
        self._lock = threading.Lock()
        self._read_run = lru_cache(maxsize=CACHE_RUNS)(self._read_uncached)
        self._analysed = 0  # runs analysed since the pages were last let go

    def release(self) -> int:
        """Let go of the dictionary's resident pages (`release_pages`); return the bytes."""
        return release_pages(f"sudachidict_{DICTIONARY}")

    def reading(self, text: str) -> str:
        """Return the text with each Japanese run replaced by its words' readings, in hiragana."""
        return _JAPANESE_RUN.sub(lambda m: self._read_run(m.group()), text)

    def _read_uncached(self, run: str) -> str:
        with self._lock:
            self._analysed += 1
            if self._analysed >= self._release_every:
                self._analysed = 0
                self.release()
            morphemes = self._tokenizer.tokenize(run)
            return to_hiragana("".join(_word_reading(m) for m in morphemes))


def _word_reading(morpheme: Morpheme) -> str:
    """Return how a word reads, as written (つながん as つながら)."""
    surface = str(morpheme.surface())
    pos = morpheme.part_of_speech()[0]
    if pos in _AS_WRITTEN or morpheme.is_oov():
        return surface
    reading = str(morpheme.reading_form())
    if pos == _AUXILIARY and reading in _DIALECT_NEGATION:
        return _NEGATION
    if pos == _VERB and reading.endswith(_CONTRACTED):
        lemma = str(morpheme.normalized_form_morpheme().reading_form())
        if lemma.endswith("ル"):
            reading = reading[: -len(_CONTRACTED)] + "ラ"
    # A reading is kana; anything else (an empty one, a Latin one) is no better than the surface.
    return reading if _KANA.fullmatch(reading) else surface


_MADV_DONTNEED = 4


def release_pages(name: str) -> int:
    """Let go of the resident pages of the read-only file mappings whose path contains `name`.

    Only what is mapped into this process: the pages stay in the kernel's page cache, and a
    later read maps them back (a minor fault, no disk read). Writable mappings are never
    touched (MADV_DONTNEED would drop their changes). Returns the bytes of mappings released;
    0 where /proc or madvise is missing (not Linux).
    """
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    released = 0
    for line in maps:
        fields = line.split(None, 5)
        if len(fields) < 6 or name not in fields[5] or "w" in fields[1]:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            released += end - start
        else:
            logger.debug("madvise on %s failed: errno %d", fields[5], ctypes.get_errno())
    return released


@cache
def default_reader() -> JapaneseReader:
    """Return the process's one reader (the dictionary is opened on first use)."""
    return JapaneseReader()
