"""The languages the bot speaks: one row each; a new language is a row here plus its YAML.

Every text of knowledge/*.yaml and every locales/<code>.yaml must exist in each language of the
table (`bot check` names what is missing); nothing falls back to another language.
"""

from __future__ import annotations

import datetime as dtm
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Language:
    """What the bot needs to know about one language."""

    code: str  # the key in knowledge/*.yaml, the locales/<code>.yaml file, the /lang argument
    name: str  # as its speakers write it, on the /lang buttons
    feed_locale: str  # Apple's System Status feed in this language fills `{locale}` with it
    time_zone: dtm.tzinfo  # where the status step's start times are shown in
    time_format: str  # strftime format of those times


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
