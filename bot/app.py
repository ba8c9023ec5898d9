"""Assemble the engine from knowledge/ and locales/, validating everything first."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.channels.limits import TELEGRAM, MessageLimits
from bot.content.knowledge import Knowledge, load_knowledge
from bot.content.locales import Locales, load_locales
from bot.content.reader import Problems
from bot.content.spellings import load_spellings
from bot.content.status_map import ServiceMap, load_service_map
from bot.conversation.engine import Engine
from bot.errors import KnowledgeError
from bot.matching.matcher import Matcher
from bot.matching.normalize import Normalizer


@dataclass(frozen=True, slots=True)
class Content:
    """Everything the bot says and knows, validated together."""

    knowledge: Knowledge
    locales: Locales
    normalizer: Normalizer
    status_services: ServiceMap = field(default_factory=ServiceMap)  # knowledge/status.yaml


def load_content(knowledge_dir: Path, locales_dir: Path) -> Content:
    """Load both content folders, reporting every problem of every file at once."""
    problems = Problems()
    knowledge = locales = spellings = None
    try:
        knowledge = load_knowledge(knowledge_dir)
    except KnowledgeError as exc:
        problems.absorb(exc)
    try:
        spellings = load_spellings(knowledge_dir / "spellings.yaml")
    except KnowledgeError as exc:
        problems.absorb(exc)
    try:
        locales = load_locales(locales_dir)
    except KnowledgeError as exc:
        problems.absorb(exc)
    status_services = ServiceMap()  # no status.yaml: no live status
    if (knowledge_dir / "status.yaml").exists():
        try:
            entry_ids = knowledge.entries.keys() if knowledge is not None else None
            status_services = load_service_map(knowledge_dir / "status.yaml", entry_ids)
        except KnowledgeError as exc:
            problems.absorb(exc)
    problems.raise_if_any()
    assert knowledge is not None and locales is not None and spellings is not None
    return Content(knowledge, locales, Normalizer(spellings), status_services)


def engine_for(content: Content, limits: MessageLimits = TELEGRAM) -> Engine:
    """Build the matcher index once and return the engine over it, for a channel's limits."""
    matcher = Matcher(content.knowledge, content.normalizer)
    return Engine(
        content.knowledge,
        matcher,
        content.locales,
        content.normalizer.detect_device,
        status_services=content.status_services,
        limits=limits,
    )


def build_engine(knowledge_dir: Path, locales_dir: Path) -> Engine:
    """Load and validate the content, then build the engine."""
    return engine_for(load_content(knowledge_dir, locales_dir))
