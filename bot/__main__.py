"""Command line: `python -m bot check | match | run | chat | stats | unmatched`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import PROJECT_ROOT, Settings
from bot.content.knowledge import Device, Knowledge
from bot.errors import ConfigError, KnowledgeError

if TYPE_CHECKING:
    from bot.conversation.state import OutcomeRecord
    from bot.insights.learning import LearnedOrder
    from bot.insights.unmatched import UnmatchedQuery

logger = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="iCloud connection-error support bot"
    )
    parser.add_argument(
        "--knowledge", type=Path, default=None, help="knowledge folder (default: ./knowledge)"
    )
    parser.add_argument(
        "--locales", type=Path, default=None, help="locales folder (default: ./locales)"
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("check", help="validate knowledge/ and locales/")
    match = sub.add_parser("match", help="recognise error texts (TEXT, or one per stdin line)")
    match.add_argument("text", nargs="?", help="the text to recognise; omit to read stdin")
    match.add_argument("--device", choices=[d.value for d in Device], default=Device.IPHONE.value)
    match.add_argument("--json", action="store_true", help="print JSON (JSON Lines for stdin)")
    match.add_argument(
        "--db",
        type=Path,
        default=None,
        help="learn the fix order from this database if it exists (default: $BOT_DB_PATH)",
    )
    sub.add_parser("run", help="run the Telegram bot (long polling)")
    chat = sub.add_parser("chat", help="talk to the bot in this terminal, no token needed")
    chat.add_argument(
        "--lang", choices=["ja", "en"], default=None, help="language (default: from $LANG)"
    )
    chat.add_argument(
        "--db", type=Path, default=None, help="keep the conversation in this SQLite file"
    )
    stats = sub.add_parser("stats", help="outcomes per entry and fix (the same as /stats)")
    stats.add_argument("--db", type=Path, default=None, help="database (default: $BOT_DB_PATH)")
    stats.add_argument(
        "--days",
        type=int,
        action="append",
        default=None,
        help="a period in days; repeat for several (default: 7 and 30)",
    )
    stats.add_argument(
        "--lang", choices=["ja", "en"], default=None, help="language (default: from $LANG)"
    )
    stats.add_argument("--chart", type=Path, default=None, help="also write the chart (PNG) here")
    unmatched = sub.add_parser(
        "unmatched", help="the most frequent questions that matched nothing, and what was chosen"
    )
    unmatched.add_argument("--db", type=Path, default=None, help="database (default: $BOT_DB_PATH)")
    unmatched.add_argument("--days", type=int, default=None, help="only the last N days")
    unmatched.add_argument("--limit", type=int, default=30, help="how many (default: 30)")
    unmatched.add_argument("--json", action="store_true", help="print JSON Lines")
    return parser


def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    env = os.environ
    knowledge = args.knowledge or Path(env.get("BOT_KNOWLEDGE_DIR") or PROJECT_ROOT / "knowledge")
    locales = args.locales or Path(env.get("BOT_LOCALES_DIR") or PROJECT_ROOT / "locales")
    return knowledge, locales


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the content; print every problem, or a one-line summary."""
    from bot.app import load_content

    try:
        content = load_content(*_dirs(args))
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    knowledge, locales = content.knowledge, content.locales
    print(
        f"OK: {len(knowledge.entries)} entries, {len(knowledge.fixes)} fixes, "
        f"{len(knowledge.stages)} stages, {len(locales.strings['en'])} locale keys"
    )
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    """Recognise one text, or every stdin line, and print the results."""
    from bot.app import load_content
    from bot.insights.learning import path_for
    from bot.matching.matcher import Matcher

    try:
        content = load_content(*_dirs(args))
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    knowledge = content.knowledge
    matcher = Matcher(knowledge, content.normalizer)
    device = Device(args.device)
    try:
        learned = _learned(args.db, knowledge)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    queries = [args.text] if args.text is not None else [line.rstrip("\r\n") for line in sys.stdin]
    for result in matcher.match_many(queries):
        fixes = list(path_for(knowledge, learned, result.entry, device)) if result.entry else []
        alternatives = [{"entry": a.entry, "score": round(a.score, 1)} for a in result.alternatives]
        if args.json:
            print(
                json.dumps(
                    {
                        "query": result.query,
                        "entry": result.found,
                        "score": round(result.score, 1),
                        "alternatives": alternatives,
                        "fixes": fixes,
                        "kind": _kind(knowledge, result.found),
                    },
                    ensure_ascii=False,
                )
            )
        else:
            alts = ", ".join(f"{a['entry']} {a['score']}" for a in alternatives) or "-"
            found = result.found or "no match"
            score = f"{result.score:.1f}"
            print(f"{result.query!r} → {found} ({score}); alternatives: {alts}; {len(fixes)} fixes")
    return 0


def _kind(knowledge: Knowledge, found: str | None) -> str | None:
    """Say what a match is: the entry's kind (error, symptom, faq), "topic", or None."""
    if found is None:
        return None
    entry = knowledge.entries.get(found)
    return entry.kind.value if entry is not None else "topic"


# ------------------------------------------------------------- outcomes, learning, unmatched


def _db_path(given: Path | None) -> Path:
    """Return --db, else BOT_DB_PATH (raises ConfigError for a bad environment)."""
    return given if given is not None else Settings.from_env(need_token=False).db_path


def _learned(db: Path | None, knowledge: Knowledge) -> LearnedOrder:
    """Return the fix order learned from the database, if there is one and learning is on."""
    from bot.insights.learning import WINDOW_DAYS, learned_orders
    from bot.insights.stats import DAY
    from bot.storage.store import SqliteStore

    if not Settings.from_env(need_token=False).learning:
        return {}
    path = _db_path(db)
    if not path.exists():
        return {}

    async def load() -> LearnedOrder:
        async with await SqliteStore.open(path) as store:
            records = await store.outcomes_since(time.time() - WINDOW_DAYS * DAY)
        return learned_orders(records, knowledge)

    return asyncio.run(load())


def _open_existing(db: Path | None) -> Path | None:
    try:
        path = _db_path(db)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if not path.exists():
        print(f"error: no database at {path} (set BOT_DB_PATH or pass --db)", file=sys.stderr)
        return None
    return path


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the outcome report of /stats; optionally write its chart."""
    from bot.app import load_content
    from bot.channels.terminal import to_plain
    from bot.insights.stats import DAY, DEFAULT_WINDOWS, build_report, fixes_in_order, render_report
    from bot.storage.store import SqliteStore

    path = _open_existing(args.db)
    if path is None:
        return 1
    windows = tuple(args.days or DEFAULT_WINDOWS)
    if any(days < 1 for days in windows):
        print("error: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        content = load_content(*_dirs(args))
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    lang = args.lang or ("ja" if os.environ.get("LANG", "").startswith("ja") else "en")
    now = time.time()

    async def load() -> list[OutcomeRecord]:
        async with await SqliteStore.open(path) as store:
            return await store.outcomes_since(now - max(windows) * DAY)

    report = build_report(asyncio.run(load()), now, windows)
    texts = render_report(report, content.knowledge, content.locales, lang)
    print("\n\n".join(to_plain(text) for text in texts))
    if args.chart is not None:
        from bot.insights.chart import solve_rate_png

        widest = max(report.windows, key=lambda w: w.days)
        stage_of = {fix_id: fix.stage for fix_id, fix in content.knowledge.fixes.items()}
        fixes = fixes_in_order(widest.fixes, content.knowledge)
        args.chart.write_bytes(solve_rate_png(fixes, stage_of))
    return 0


def cmd_unmatched(args: argparse.Namespace) -> int:
    """List the most frequent questions that matched nothing, and what people chose."""
    from bot.insights.stats import DAY
    from bot.insights.unmatched import format_line, most_frequent
    from bot.storage.store import SqliteStore

    path = _open_existing(args.db)
    if path is None:
        return 1
    since = time.time() - args.days * DAY if args.days else 0.0

    async def load() -> list[UnmatchedQuery]:
        async with await SqliteStore.open(path) as store:
            return await store.unmatched_since(since)

    for item in most_frequent(asyncio.run(load()), max(args.limit, 0)):
        if args.json:
            print(json.dumps(item.as_json(), ensure_ascii=False))
        else:
            print(format_line(item))
    return 0


async def _run(settings: Settings, knowledge_dir: Path, locales_dir: Path) -> int:
    from bot import ocr
    from bot.app import build_engine
    from bot.apple_status.status import CACHE_SECONDS, StatusFeed
    from bot.channels.telegram.adapter import build_application, reload_in_background, serve
    from bot.live import LiveEngine
    from bot.storage.store import SqliteStore

    engine = build_engine(knowledge_dir, locales_dir)
    live = LiveEngine(engine, lambda: build_engine(knowledge_dir, locales_dir))
    store = await SqliteStore.open(settings.db_path)
    status = None
    if settings.status_url is not None:
        # The cache never outlives a poll interval, so each poll sees a fresh feed.
        ttl = min(CACHE_SECONDS, settings.status_poll_seconds)
        status = StatusFeed(settings.status_url, ttl=ttl)
    readers = None
    if await asyncio.to_thread(ocr.available):
        readers = ocr.OcrPool()
    else:
        logger.warning("Tesseract (jpn+eng) is not installed: pictures get a request for text")
    app = build_application(
        settings.token,
        settings.api_base_url,
        settings.api_file_url,
        live,
        store,
        settings.admin_ids,
        learning=settings.learning,
        status=status,
        status_poll_seconds=settings.status_poll_seconds,
        support_chat_id=settings.support_chat_id,
        history_days=settings.history_days,
        ocr=readers,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP: reload knowledge/ and locales/ if they validate (the outcome goes to the log).
    loop.add_signal_handler(signal.SIGHUP, reload_in_background, live, app)
    try:
        await serve(app, engine, stop)
    finally:
        if readers is not None:
            readers.close()
        await store.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the Telegram bot until SIGINT or SIGTERM; exit 0 on a clean stop."""
    # Opt in to PTB 22's timedelta durations now, instead of a deprecation warning per 429.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    from bot.logs import setup_logging

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, (settings.token,))
    try:
        return asyncio.run(
            _run(
                settings,
                args.knowledge or settings.knowledge_dir,
                args.locales or settings.locales_dir,
            )
        )
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("refusing to start: the knowledge base is invalid", file=sys.stderr)
        return 1


async def _chat(args: argparse.Namespace) -> int:
    from bot.app import build_engine
    from bot.channels.terminal import TerminalChat
    from bot.storage.store import MemoryStore, SqliteStore, Store

    engine = build_engine(*_dirs(args))
    lang = args.lang or ("ja" if os.environ.get("LANG", "").startswith("ja") else "en")
    store: Store = await SqliteStore.open(args.db) if args.db else MemoryStore()
    chat = TerminalChat(engine, store, lang, sys.stdout)
    interactive = sys.stdin.isatty()
    await chat.say("/start")
    try:
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            if line.strip() in ("/quit", "/exit"):
                break
            await chat.say(line)
    finally:
        await store.close()
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to the engine in the terminal."""
    try:
        return asyncio.run(_chat(args))
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        # No sub-command: run the bot when there is a token, else talk in the terminal.
        chosen = "run" if os.environ.get("TELEGRAM_BOT_TOKEN") else "chat"
        args = _parser().parse_args([*(argv or []), chosen])
    command = {
        "check": cmd_check,
        "match": cmd_match,
        "run": cmd_run,
        "chat": cmd_chat,
        "stats": cmd_stats,
        "unmatched": cmd_unmatched,
    }[args.command]
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
