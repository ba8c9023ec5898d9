"""The project's exceptions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class BotError(Exception):
    """Base class of every error this project raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem, located in a file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class KnowledgeError(BotError):
    """The knowledge base or the locales are invalid; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(BotError):
    """An environment variable is missing or malformed."""


class StartupError(BotError):
    """The bot cannot start (the Bot API refused the token or cannot be reached)."""
