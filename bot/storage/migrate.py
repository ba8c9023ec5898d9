"""Copy a SQLite database into an empty PostgreSQL one: `python -m bot migrate-db`."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from bot.config import DATABASE_URL_SCHEMES, redact_url
from bot.errors import BotError
from bot.storage.base import USER_FREE_TABLES, SchemaVersionError
from bot.storage.postgres import PostgresStore, quote_ident
from bot.storage.sqlite import SqliteStore

SOURCE_PREFIX = "sqlite:"
COPY_BATCH_ROWS = 5000  # rows per COPY: a large history is never held in memory at once


class MigrationRefused(BotError):
    """The copy cannot start: a missing source, a wrong URL, or a target that holds data."""


def source_path(text: str) -> Path:
    """Return the file of a `sqlite:PATH` argument."""
    if not text.startswith(SOURCE_PREFIX) or not text[len(SOURCE_PREFIX) :]:
        raise MigrationRefused(f"--from must be sqlite:PATH (got {text!r})")
    path = Path(text[len(SOURCE_PREFIX) :])
    if not path.is_file():
        raise MigrationRefused(f"no SQLite database at {path}")
    return path


def _tables_in_order(src: sqlite3.Connection) -> list[str]:
    """Return the source's tables, each after the tables its foreign keys point to."""
    names = [
        name
        for (name,) in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
        if name not in USER_FREE_TABLES
    ]
    parents = {
        name: {row[2] for row in src.execute(f"PRAGMA foreign_key_list({quote_ident(name)})")}
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= {*ordered, n}]
        if not ready:  # a cycle: cannot happen with this schema; keep going in name order
            ready = [n for n in names if n not in ordered][:1]
        ordered.extend(ready)
    return ordered


def _clean(value: Any) -> Any:
    # PostgreSQL's text cannot hold NUL, which SQLite's can (PostgresStore does the same).
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


async def _copy(src: sqlite3.Connection, conn: asyncpg.Connection[Any]) -> list[tuple[str, int]]:
    """Copy every table in one transaction; refuse a target that already holds data."""
    copied: list[tuple[str, int]] = []
    async with conn.transaction():
        target = {
            name
            for (name,) in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        tables = _tables_in_order(src)
        unknown = [t for t in tables if t not in target]
        if unknown:
            raise MigrationRefused(
                f"the target has no table {', '.join(unknown)}: "
                "is the SQLite file from a newer bot?"
            )
        full = [
            t
            for t in tables
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {quote_ident(t)})")
        ]
        if full:
            raise MigrationRefused(
                f"the target already holds data ({', '.join(full)}): migrate-db copies into an "
                "empty database only, so that nothing is duplicated or overwritten"
            )
        for table in tables:
            columns = [row[1] for row in src.execute(f"PRAGMA table_info({quote_ident(table)})")]
            listed = ", ".join(quote_ident(c) for c in columns)
            cursor = src.execute(f"SELECT {listed} FROM {quote_ident(table)} ORDER BY rowid")
            count = 0
            while batch := cursor.fetchmany(COPY_BATCH_ROWS):
                records = [tuple(_clean(v) for v in row) for row in batch]
                await conn.copy_records_to_table(table, records=records, columns=columns)
                count += len(records)
            copied.append((table, count))
        # Copied ids came with their values: the next id generated must come after them.
        identities = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES'"
        )
        for table, column in identities:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence($1, $2),"
                f" coalesce(max({quote_ident(column)}), 0) + 1, false)"
                f" FROM {quote_ident(table)}",
                quote_ident(table),
                column,
            )
    return copied


async def migrate_sqlite_to_postgres(path: Path, url: str) -> list[tuple[str, int]]:
    """Copy every table of the SQLite file at path into the empty PostgreSQL database at url."""
    # An older bot's file is brought to this version's schema first; the target gets the same.
    async with await SqliteStore.open(path):
        pass
    async with await PostgresStore.open(url):
        pass
    conn = await asyncpg.connect(url)
    try:
        # Read-only: the copy never changes the source (as_uri escapes ? and # in the path).
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as src:
            return await _copy(src, conn)
    finally:
        await conn.close()


def main(
    source: str, target: str | None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run `migrate-db`: print what was copied, or one line saying why not; return the exit code."""
    try:
        if not target or not target.startswith(DATABASE_URL_SCHEMES):
            raise MigrationRefused("--to (or BOT_DATABASE_URL) must be a postgresql:// URL")
        path = source_path(source)
        copied = asyncio.run(migrate_sqlite_to_postgres(path, target))
    except (MigrationRefused, SchemaVersionError) as exc:
        print(f"error: {exc}", file=err)
        return 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=err)
        return 1
    for table, count in copied:
        print(f"{table}: {count} row(s)", file=out)
    print(f"copied {path} to {redact_url(target)}", file=out)
    return 0
