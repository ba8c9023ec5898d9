"""Assemble the engine from knowledge/ and locales/, validating both first."""

from __future__ import annotations

from pathlib import Path

from bot.engine import Engine
from bot.errors import KnowledgeError
from bot.i18n import Locales, load_locales
from bot.knowledge import Knowledge, load_knowledge
from bot.matcher import Matcher, detect_device


def load_content(knowledge_dir: Path, locales_dir: Path) -> tuple[Knowledge, Locales]:
    """Load both content folders, reporting every problem of both at once."""
    problems = []
    knowledge: Knowledge | None = None
    locales: Locales | None = None
    try:
        knowledge = load_knowledge(knowledge_dir)
    except KnowledgeError as exc:
        problems += exc.problems
    try:
        locales = load_locales(locales_dir)
    except KnowledgeError as exc:
        problems += exc.problems
    if problems or knowledge is None or locales is None:
        raise KnowledgeError(problems)
    return knowledge, locales


def build_engine(knowledge_dir: Path, locales_dir: Path) -> Engine:
    """Load and validate the content, build the matcher index once, return the engine."""
    knowledge, locales = load_content(knowledge_dir, locales_dir)
    return Engine(knowledge, Matcher(knowledge), locales, detect_device)
