"""The languages the bot speaks: one row each; a new language is a row here plus its YAML.

Every text of knowledge/*.yaml and every locales/<code>.yaml must exist in each language of the
table (`bot check` names what is missing); nothing falls back to another language.
"""

from __future__ import annotations

import datetime as dtm
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# A message in Latin letters says which language it is in from this many words on ("hi" or
# "iCloud" alone do not).
MIN_LATIN_WORDS = 3


@dataclass(frozen=True, slots=True)
class Language:
    """What the bot needs to know about one language."""

    code: str  # the key in knowledge/*.yaml, the locales/<code>.yaml file, the /lang argument
    name: str  # as its speakers write it, on the /lang buttons
    feed_locale: str  # Apple's System Status feed in this language fills `{locale}` with it
    time_zone: dtm.tzinfo  # where the status step's start times are shown in
    time_format: str  # strftime format of those times
    # The letters a message written in this language is mostly made of (a regex character
    # class); a message counts as written in the language with most of its letters.
    script: str = "A-Za-z"


@dataclass(frozen=True, slots=True)
class Languages:
    """The table: rows in order; the first is the reference the others are checked against."""

    rows: tuple[Language, ...]
    default: str  # for users whose Telegram language is none of the rows

    def __post_init__(self) -> None:
        codes = [row.code for row in self.rows]
        if not codes or len(set(codes)) != len(codes) or self.default not in codes:
            raise ValueError(f"languages table: unique codes and a default among them: {codes}")

    @property
    def codes(self) -> tuple[str, ...]:
        """Return every language code, in table order."""
        return tuple(row.code for row in self.rows)

    @property
    def reference(self) -> Language:
        """Return the language the other locale files are compared with."""
        return self.rows[0]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Language]:
        return iter(self.rows)

    def __contains__(self, code: object) -> bool:
        return any(row.code == code for row in self.rows)

    def written(self, text: str) -> str | None:
        """Return the language a message is written in, by its letters; None if unsure.

        Latin letters alone are weak evidence ("iCloud" in a Japanese sentence), so a language
        written in them wins only with no other script in the text and a few words of it.
        """
        counts = {row.code: len(_letters(row.script).findall(text)) for row in self.rows}
        best = max(counts, key=lambda code: counts[code])
        if counts[best] == 0:
            return None
        latin = self[best].script == "A-Za-z"
        if latin and (
            len(re.findall(r"[A-Za-z]{2,}", text)) < MIN_LATIN_WORDS
            or any(n for code, n in counts.items() if self[code].script != "A-Za-z")
        ):
            return None
        return best

    def __getitem__(self, code: str) -> Language:
        """Return the row of a code; an unknown code gets the default language's row."""
        for row in self.rows:
            if row.code == code:
                return row
        return self[self.default]

    def pick(self, chosen: str | None, language_code: str | None) -> str:
        """Return a user's language: their /lang choice, else Telegram's language, else default.

        Telegram's `language_code` is an IETF tag ("ja", "ja-JP", "en-US") and $LANG a POSIX
        locale ("ja_JP.UTF-8"): their first part names the row.
        """
        if chosen in self:
            return str(chosen)
        primary = re.split(r"[-_.@]", (language_code or "").lower(), maxsplit=1)[0]
        return primary if primary in self else self.default


LANGUAGES = Languages(
    rows=(
        Language(
            code="ja",
            name="日本語",
            feed_locale="ja_JP",
            time_zone=ZoneInfo("Asia/Tokyo"),
            time_format="%Y/%m/%d %H:%M",
            script="\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f",
        ),
        Language(
            code="en",
            name="English",
            feed_locale="en_US",
            time_zone=dtm.UTC,
            time_format="%Y-%m-%d %H:%M",
        ),
    ),
    default="en",
)


@functools.cache
def _letters(script: str) -> re.Pattern[str]:
    """Return the pattern of one letter of a script (compiled once: re's own cache of 512
    patterns was found recompiling them, ~3% of the loop's time in a burst of pastes)."""
    return re.compile(f"[{script}]")
