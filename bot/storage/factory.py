"""Open the store the settings ask for: PostgreSQL at BOT_DATABASE_URL, else SQLite."""

from __future__ import annotations

from pathlib import Path

from bot.config import DATABASE_URL_SCHEMES, redact_url
from bot.errors import BotError
from bot.storage.base import Store
from bot.storage.sqlite import SqliteStore


class DatabaseUnavailable(BotError):
    """The PostgreSQL server cannot be reached or refuses us at start-up."""


async def open_store_url(url: str | None, sqlite_path: Path) -> Store:
    """Open PostgreSQL at url when one is given, else the SQLite file at sqlite_path."""
    if not url:
        return await SqliteStore.open(sqlite_path)
    if not url.startswith(DATABASE_URL_SCHEMES):
        raise DatabaseUnavailable(f"not a PostgreSQL URL: {redact_url(url)}")
    # Imported here: asyncpg is loaded only by those who use PostgreSQL.
    import asyncpg

    from bot.storage.postgres import PostgresStore

    try:
        return await PostgresStore.open(url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # One line naming the server (without its password), not a traceback.
        raise DatabaseUnavailable(
            f"cannot open the database at {redact_url(url)}: {type(exc).__name__}: {exc}"
        ) from None
