"""Where user states live: the Store contract; memory, SQLite, PostgreSQL; `open_store(url)`."""

from __future__ import annotations

from pathlib import Path

from bot.errors import ConfigError
from bot.storage.base import Store

_MEMORY = "memory:"
_SQLITE = "sqlite:"
_POSTGRES = ("postgresql://", "postgres://")


async def open_store(url: str | Path) -> Store:
    """Open the store a URL names: `sqlite:PATH` or a plain path, `memory:`, `postgresql://…`.

    `postgresql://…` opens PostgresStore; any other `scheme://` is refused. Raises ConfigError
    for a URL it cannot use, a BotError (one line) for a database it cannot use.
    """
    text = str(url).strip()
    if text == _MEMORY:
        from bot.storage.memory import MemoryStore

        return MemoryStore()
    if text.startswith(_POSTGRES):
        from bot.storage.factory import open_store_url

        return await open_store_url(text, Path())
    if text.startswith(_SQLITE):
        text = text.removeprefix(_SQLITE)
    elif "://" in text or text.startswith(_MEMORY):
        scheme = text.split(":", 1)[0]
        raise ConfigError(
            f"unknown storage {scheme!r}: use sqlite:PATH, a path, memory: or postgresql://…"
        )
    if not text:
        raise ConfigError("storage: sqlite: needs a file path (sqlite:data/bot.sqlite3)")
    # Imported here so that code which only needs the contract does not load aiosqlite.
    from bot.storage.sqlite import SqliteStore

    return await SqliteStore.open(Path(text))


__all__ = ["Store", "open_store"]
