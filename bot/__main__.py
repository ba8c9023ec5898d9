"""Command line: `python -m bot` check, match, run, serve, chat, stats, unmatched, migrate-db."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.content.knowledge import Device, Knowledge
from bot.content.languages import LANGUAGES
from bot.errors import BotError, ConfigError, KnowledgeError, StartupError
from bot.heap import share_one_arena

if TYPE_CHECKING:
    from bot.insights.learning import LearnedOrder


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
        help="learn the fix order from this database if it exists"
        " (default: $BOT_DATABASE_URL, else $BOT_DB_PATH)",
    )
    sub.add_parser("run", help="run the Telegram bot (long polling)")
    sub.add_parser("serve", help="run the Telegram bot as a webhook server (BOT_HOST:BOT_PORT)")
    chat = sub.add_parser("chat", help="talk to the bot in this terminal, no token needed")
    chat.add_argument(
        "--lang", choices=LANGUAGES.codes, default=None, help="language (default: from $LANG)"
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
        "--lang", choices=LANGUAGES.codes, default=None, help="language (default: from $LANG)"
    )
    stats.add_argument("--chart", type=Path, default=None, help="also write the chart (PNG) here")
    unmatched = sub.add_parser(
        "unmatched", help="the most frequent questions that matched nothing, and what was chosen"
    )
    unmatched.add_argument("--db", type=Path, default=None, help="database (default: $BOT_DB_PATH)")
    unmatched.add_argument("--days", type=int, default=None, help="only the last N days")
    unmatched.add_argument("--limit", type=int, default=30, help="how many (default: 30)")
    unmatched.add_argument("--json", action="store_true", help="print JSON Lines")
    migrate = sub.add_parser(
        "migrate-db", help="copy a SQLite database into an empty PostgreSQL database"
    )
    migrate.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH")
    migrate.add_argument(
        "--to",
        dest="target",
        default=None,
        metavar="postgresql://…",
        help="(default: $BOT_DATABASE_URL)",
    )
    return parser


def _dirs(args: argparse.Namespace, settings: Settings) -> tuple[Path, Path]:
    """Return --knowledge and --locales, else the folders of the settings."""
    return args.knowledge or settings.knowledge_dir, args.locales or settings.locales_dir


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate the content; print every problem, or a one-line summary."""
    from bot.app import load_content

    try:
        content = load_content(*_dirs(args, settings))
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


def cmd_match(args: argparse.Namespace, settings: Settings) -> int:
    """Recognise one text, or every stdin line, and print the results."""
    from bot.app import load_content
    from bot.insights.learning import path_for
    from bot.matching.matcher import Matcher

    try:
        content = load_content(*_dirs(args, settings))
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    knowledge = content.knowledge
    matcher = Matcher(knowledge, content.normalizer)
    device = Device(args.device)
    learned = _learned(args.db, knowledge, settings)
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


def _learned(db: Path | None, knowledge: Knowledge, settings: Settings) -> LearnedOrder:
    """Return the fix order learned from the database, if there is one and learning is on."""
    from bot.app import read_outcomes
    from bot.insights.learning import WINDOW_DAYS, learned_orders
    from bot.insights.stats import DAY

    source: Path | str = settings.database_url or settings.db_path if db is None else db
    if not settings.learning or (isinstance(source, Path) and not source.exists()):
        return {}
    records = asyncio.run(read_outcomes(source, time.time() - WINDOW_DAYS * DAY))
    return learned_orders(records, knowledge)


def _open_existing(db: Path | None, settings: Settings) -> Path | str | None:
    """Return --db, else BOT_DATABASE_URL, else BOT_DB_PATH; None (said why) if it is missing."""
    if db is None and settings.database_url is not None:
        return str(settings.database_url)
    path = db if db is not None else settings.db_path
    if not path.exists():
        print(f"error: no database at {path} (set BOT_DB_PATH or pass --db)", file=sys.stderr)
        return None
    return path


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    """Print the outcome report of /stats; optionally write its chart."""
    from bot.app import load_content, read_outcomes
    from bot.channels.terminal import to_plain
    from bot.insights.stats import DAY, DEFAULT_WINDOWS, build_report, fixes_in_order, render_report

    path = _open_existing(args.db, settings)
    if path is None:
        return 1
    windows = tuple(args.days or DEFAULT_WINDOWS)
    if any(days < 1 for days in windows):
        print("error: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        content = load_content(*_dirs(args, settings))
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    lang = args.lang or settings.lang
    now = time.time()
    records = asyncio.run(read_outcomes(path, now - max(windows) * DAY))
    report = build_report(records, now, windows)
    texts = render_report(report, content.knowledge, content.locales, lang)
    print("\n\n".join(to_plain(text) for text in texts))
    if args.chart is not None:
        from bot.insights.chart import solve_rate_png

        widest = max(report.windows, key=lambda w: w.days)
        stage_of = {fix_id: fix.stage for fix_id, fix in content.knowledge.fixes.items()}
        fixes = fixes_in_order(widest.fixes, content.knowledge)
        args.chart.write_bytes(solve_rate_png(fixes, stage_of))
    return 0


def cmd_unmatched(args: argparse.Namespace, settings: Settings) -> int:
    """List the most frequent questions that matched nothing, and what people chose."""
    from bot.app import read_unmatched
    from bot.insights.stats import DAY
    from bot.insights.unmatched import format_line, most_frequent

    path = _open_existing(args.db, settings)
    if path is None:
        return 1
    since = time.time() - args.days * DAY if args.days else 0.0
    for item in most_frequent(asyncio.run(read_unmatched(path, since)), max(args.limit, 0)):
        if args.json:
            print(json.dumps(item.as_json(), ensure_ascii=False))
        else:
            print(format_line(item))
    return 0


def cmd_migrate_db(args: argparse.Namespace, settings: Settings) -> int:
    """Copy every table of a SQLite database into an empty PostgreSQL database."""
    from bot.storage.migrate import main as migrate

    # --to defaults to BOT_DATABASE_URL, which keeps the password out of `ps`.
    return migrate(args.source, args.target or settings.database_url)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Telegram bot until SIGINT or SIGTERM; exit 0 on a clean stop."""
    return _run(args, webhook=False)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Telegram bot as a webhook server until SIGINT or SIGTERM; exit 0 when stopped."""
    return _run(args, webhook=True)


def _run(args: argparse.Namespace, *, webhook: bool) -> int:
    from bot.app import run_bot
    from bot.logs import redact, setup_logging

    try:
        settings = Settings.from_env()  # the token is needed now
        if webhook:
            settings.webhook.require_secret()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(
        settings.log_level, tuple(s for s in (settings.token, settings.webhook.secret) if s)
    )
    try:
        return asyncio.run(run_bot(settings, *_dirs(args, settings), webhook=webhook))
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("refusing to start: the knowledge base is invalid", file=sys.stderr)
        return 1
    except StartupError as exc:  # one line, at every LOG_LEVEL; never the token
        print(f"error: {redact(str(exc), (settings.token,))}", file=sys.stderr)
        return 1


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """Talk to the engine in the terminal."""
    from bot.app import run_chat

    try:
        return asyncio.run(
            run_chat(
                replace(settings, lang=args.lang or settings.lang),
                *_dirs(args, settings),
                args.db,
                sys.stdin,
                sys.stdout,
            )
        )
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(need_token=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not settings.own_malloc_arenas:
        share_one_arena()  # before any thread starts (bot/heap.py)
    if args.command is None:
        # No sub-command: run the bot when there is a token, else talk in the terminal.
        chosen = "run" if settings.token else "chat"
        args = _parser().parse_args([*(argv or []), chosen])
    command = {
        "check": cmd_check,
        "match": cmd_match,
        "run": cmd_run,
        "serve": cmd_serve,
        "chat": cmd_chat,
        "stats": cmd_stats,
        "unmatched": cmd_unmatched,
        "migrate-db": cmd_migrate_db,
    }[args.command]
    try:
        return command(args, settings)
    except BotError as exc:  # e.g. an unusable database: one line the operator can act on
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
