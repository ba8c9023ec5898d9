"""Japanese typed in Latin letters ("icloud ni tsunagaranai") turned into kana before matching.

A message is read as romaji when most of its Latin words (product names aside) spell valid
romaji syllables and are not English words, and one of them is Japanese grammar (a particle,
an inflected ending): English words nearly always break the syllable rules somewhere (consonant
clusters, a final consonant other than n), and the few that do not ("to", "no", "same", "one")
are listed as English. jaconv (MIT) does the conversion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import jaconv

# One or more romaji syllables, Hepburn or kunrei, with doubled consonants (っ) and syllabic n
# (ん, also written nn). Texts are folded first, so there are no apostrophes or hyphens left.
_ROMAJI_WORD = re.compile(
    r"""(?:
        (?:kk|gg|ss|zz|tt|dd|hh|bb|pp|mm|rr|ff|jj|cc|tc)?
        (?:ky|gy|sh|sy|zy|jy|ch|cy|ty|ts|dy|ny|hy|by|py|my|ry|fy|
           k|g|s|z|j|t|d|n|h|b|p|m|y|r|w|f|v)?
        [aiueo]
      | n(?![aiueoy])
    )+""",
    re.VERBOSE,
)
_LATIN_WORD = re.compile("[a-z0-9]+")
# At least this share of a message's Latin words (product names aside) must be romaji and not
# English: "tsunagaranai desu" (all), "icloud ni tsunagaranai" (both words but icloud), never
# "on my ipad" (on is valid romaji, my is not: half).
ROMAJI_SHARE = 0.6
# ... and at least one word must be Japanese grammar: a particle or an inflected ending. A lone
# word that happens to spell romaji ("machine" is ma-chi-ne) is English until it says more.
_PARTICLES = frozenset(
    {"ni", "wo", "ga", "de", "wa", "ha", "no", "mo", "ka", "ne", "yo", "tte", "kara", "made"}
    | {"demo", "kedo", "desu", "masu", "da", "dekinai", "dekimasen"}
    | {"dake", "shika", "toka", "nanka", "noni", "node", "mata", "nani", "dou", "aru"}
    # Words no English sentence has, which people type without any grammar: "junban oshiete",
    # "aikuraudo purasu ryoukin", "saaba setsuzoku shippai".
    | {"shippai", "setsuzoku", "renraku", "kakunin", "ryoukin", "junban", "yobou", "mazu"}
    # ... and the loanwords and nouns of these errors ("kishuhen go icloud eraa", "appuru
    # sapooto renrakusaki", "douki dekinai").
    | {"eraa", "saabaa", "saaba", "appuru", "sapooto", "aikuraudo", "douki", "kishuhen"}
    | {"renrakusaki", "bakkuappu", "sainin", "roguin", "ninshou", "youryou", "koodo"}
)
_ENDINGS = re.compile(
    "(?:nai|masen|mashita|masu|desu|teru|tteru|deru|dete|nakatta|nakute|shita|shite|shitai"
    "|temo|tara|suru|dekiru|oshiete|kudasai)$"
)
# Japanese long vowels in loanwords are ー (サーバー); typed in romaji they double the vowel
# (saabaa). Doubled a, i, e become ー (as a hyphen, which jaconv reads as ー), as the katakana
# spelling has it; doubled o and u stay two kana, because native words read so (つうしん, こおり).
_LONG_VOWEL = re.compile("([aie])\\1")
# jaconv reads "nn" as ん, so "minna" would lose its な: before a vowel, ん + n.
_N_BEFORE_VOWEL = re.compile("nn(?=[aiueo])")


def is_romaji_word(word: str) -> bool:
    """Tell whether a lower-case Latin word spells only romaji syllables."""
    return _ROMAJI_WORD.fullmatch(word) is not None


class RomajiReader:
    """Detect romaji messages and turn their romaji words into hiragana."""

    def __init__(self, english: Iterable[str], names: Iterable[str]) -> None:
        self._english = frozenset(w.casefold() for w in english)
        self._names = tuple(n.casefold() for n in names)
        # Product names stay as typed in any message (wifi is valid romaji); the words of
        # longer names ("sign in", "apple id") do not count for or against romaji either.
        self._keep = frozenset(n for n in self._names if " " not in n)
        self._neutral = frozenset(w for n in self._names for w in n.split())
        phrases = sorted({n for n in self._names if " " in n}, key=lambda n: (-len(n), n))
        self._phrases = re.compile(
            "|".join(rf"(?<![a-z0-9]){re.escape(p)}(?![a-z0-9])" for p in phrases) or "(?!)"
        )

    def with_english(self, words: Iterable[str]) -> RomajiReader:
        """Return a reader that also knows these words as English."""
        return RomajiReader(self._english | {w.casefold() for w in words}, self._names)

    def looks_romaji(self, text: str) -> bool:
        """Tell whether a folded (lower-case, punctuation-free) text is Japanese in romaji."""
        words = [w for w in _LATIN_WORD.findall(text) if w not in self._neutral and not w.isdigit()]
        if not words:
            return False
        romaji = [w for w in words if w not in self._english and is_romaji_word(w)]
        if len(romaji) < ROMAJI_SHARE * len(words):
            return False
        return any(w in _PARTICLES or _ENDINGS.search(w) for w in words if is_romaji_word(w))

    def to_kana(self, text: str) -> str:
        """Return a folded text with its romaji words in hiragana, if it reads as romaji."""
        if not self.looks_romaji(text):
            return text
        # Longer names ("sign in": in is valid romaji) are kept whole; only the rest converts.
        kept = [(m.start(), m.end()) for m in self._phrases.finditer(text)]
        pieces, at = [], 0
        for start, end in [*kept, (len(text), len(text))]:
            pieces.append(_LATIN_WORD.sub(lambda m: self._word(m.group()), text[at:start]))
            pieces.append(text[start:end])
            at = end
        return "".join(pieces)

    def _word(self, word: str) -> str:
        if word in self._keep or not is_romaji_word(word):
            return word
        word = _N_BEFORE_VOWEL.sub("nnn", _LONG_VOWEL.sub("\\1-", word))
        return str(jaconv.alphabet2kana(word))
