"""The composition root: settings -> content, matcher, engine, store, status feed, OCR, channel.

The content is validated as a whole before anything starts; each channel is then composed
from the same channel-independent services (bot/service.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.apple_status.feed import CACHE_SECONDS, StatusFeed
from bot.channels.limits import TELEGRAM, MessageLimits
from bot.config import Settings
from bot.content.intents import Intent, load_intents
from bot.content.knowledge import Knowledge, load_knowledge
from bot.content.locales import Locales, load_locales
from bot.content.reader import Problems
from bot.content.spellings import load_spellings
from bot.content.status_map import ServiceMap, load_service_map
from bot.conversation.engine import Engine
from bot.errors import KnowledgeError
from bot.live import LiveEngine
from bot.looplag import probe
from bot.matching.intents import IntentClassifier
from bot.matching.matcher import Matcher, settle
from bot.matching.normalize import Normalizer
from bot.matching.semantic import default_encoder
from bot.service import Learning, Services
from bot.storage.base import Store
from bot.storage.factory import open_store_url
from bot.storage.locks import UserLocks
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from bot.conversation.state import OutcomeRecord
    from bot.insights.unmatched import UnmatchedQuery
    from bot.ocr import OcrPool

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Content:
    """Everything the bot says and knows, validated together."""

    knowledge: Knowledge
    locales: Locales
    normalizer: Normalizer
    status_services: ServiceMap = field(default_factory=ServiceMap)  # knowledge/status.yaml
    intents: Mapping[Intent, tuple[str, ...]] = field(default_factory=dict)  # intents.yaml


def load_content(knowledge_dir: Path, locales_dir: Path) -> Content:
    """Load both content folders, reporting every problem of every file at once."""
    problems = Problems()
    knowledge = locales = spellings = None
    try:
        spellings = load_spellings(knowledge_dir / "spellings.yaml")
    except KnowledgeError as exc:
        problems.absorb(exc)
    try:
        topics = spellings.topics.keys() if spellings is not None else None
        knowledge = load_knowledge(knowledge_dir, topic_names=topics)
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
    intents: Mapping[Intent, tuple[str, ...]] = {}
    if (knowledge_dir / "intents.yaml").exists():  # none: typed replies are not understood
        try:
            intents = load_intents(knowledge_dir / "intents.yaml")
        except KnowledgeError as exc:
            problems.absorb(exc)
    problems.raise_if_any()
    assert knowledge is not None and locales is not None and spellings is not None
    return Content(knowledge, locales, Normalizer(spellings), status_services, intents)


def engine_for(content: Content, limits: MessageLimits = TELEGRAM) -> Engine:
    """Build the matcher index once and return the engine over it, for a channel's limits."""
    matcher = Matcher(content.knowledge, content.normalizer)
    intents = (
        IntentClassifier(content.intents, content.normalizer, default_encoder())
        if content.intents
        else None
    )
    settle(content.normalizer)
    return Engine(
        content.knowledge,
        matcher,
        content.locales,
        content.normalizer.detect_device,
        status_services=content.status_services,
        limits=limits,
        intents=intents,
    )


def build_engine(knowledge_dir: Path, locales_dir: Path) -> Engine:
    """Load and validate the content, then build the engine."""
    return engine_for(load_content(knowledge_dir, locales_dir))


# ----------------------------------------------------------------------- composition root


def live_engine(knowledge_dir: Path, locales_dir: Path) -> LiveEngine:
    """Build the engine, held for reloads from the same folders (raises KnowledgeError)."""
    return LiveEngine(
        build_engine(knowledge_dir, locales_dir), lambda: build_engine(knowledge_dir, locales_dir)
    )


def status_feed(settings: Settings) -> StatusFeed | None:
    """Return Apple's status feed as configured; None when live status is off."""
    if settings.status_url is None:
        return None
    # The cache never outlives a poll interval, so each poll sees a fresh feed.
    return StatusFeed(settings.status_url, ttl=min(CACHE_SECONDS, settings.status_poll_seconds))


async def open_ocr() -> OcrPool | None:
    """Return the screenshot readers, or None when Tesseract (jpn+eng) is not installed."""
    from bot import ocr  # Pillow and numpy: only for the bot that reads pictures

    if await asyncio.to_thread(ocr.available):
        return ocr.OcrPool()
    logger.warning("Tesseract (jpn+eng) is not installed: pictures get a request for text")
    return None


async def run_bot(
    settings: Settings, knowledge_dir: Path, locales_dir: Path, *, webhook: bool = False
) -> int:
    """Run the Telegram bot until SIGINT or SIGTERM (raises KnowledgeError before starting).

    Long polling, or with `webhook` an HTTP server that Telegram delivers updates to.
    """
    from bot.channels.telegram.application import build_application, serve, serve_webhook

    live = live_engine(knowledge_dir, locales_dir)
    store = await open_store_url(settings.database_url, settings.db_path)
    readers = await open_ocr()
    learning = Learning(live, store) if settings.learning else None
    # Several instances on one database: each user's lock is also the database's.
    locks = UserLocks(store.user_lock if store.shared else None)
    services = Services(
        live, store, locks, status=status_feed(settings), learning=learning, ocr=readers
    )
    bot = build_application(settings, services)
    lag = None
    if settings.loop_lag_seconds is not None:  # BOT_LOOP_LAG_SECONDS: an operator's probe
        lag = asyncio.create_task(probe(settings.loop_lag_seconds), name="loop-lag")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP: reload knowledge/ and locales/ if they validate (the outcome goes to the log).
    loop.add_signal_handler(signal.SIGHUP, live.reload_in_background, "SIGHUP")
    try:
        if webhook:
            await serve_webhook(bot, live, settings, stop)
        else:
            await serve(bot, live, stop)
    finally:
        if lag is not None:
            lag.cancel()
        if readers is not None:
            readers.close()
        await store.close()
    return 0


async def run_chat(
    settings: Settings,
    knowledge_dir: Path,
    locales_dir: Path,
    db: Path | None,
    lines: TextIO,
    out: TextIO,
) -> int:
    """Talk to the bot on a text stream (raises KnowledgeError before starting)."""
    from bot.channels.terminal import terminal_chat

    live = live_engine(knowledge_dir, locales_dir)
    store: Store
    if db is not None:
        store = await SqliteStore.open(db)
    elif settings.database_url is not None:  # the conversation goes where the bot keeps its own
        store = await open_store_url(settings.database_url, settings.db_path)
    else:
        store = MemoryStore()
    try:
        chat = terminal_chat(Services(live, store), out, settings.lang)
        try:
            await chat.run(lines, interactive=lines.isatty())
        finally:
            await chat.service.outbox.close()
    finally:
        await store.close()
    return 0


async def _open_existing(db: Path | str) -> Store:
    """Open an existing database: a SQLite file (read-only is enough) or a PostgreSQL URL."""
    if isinstance(db, str):
        return await open_store_url(db, Path())
    return await SqliteStore.open(db, require_write=False)


async def read_outcomes(db: Path | str, since: float) -> list[OutcomeRecord]:
    """Return the history lines of an existing database since a time."""
    async with await _open_existing(db) as store:
        return await store.outcomes_since(since)


async def read_unmatched(db: Path | str, since: float) -> list[UnmatchedQuery]:
    """Return the unmatched questions of an existing database since a time."""
    async with await _open_existing(db) as store:
        return await store.unmatched_since(since)
