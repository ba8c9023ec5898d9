"""Compatibility: the names bot.storage.store had before the family split.

New code imports bot.storage.base (the contract), bot.storage.memory or bot.storage.sqlite,
or calls bot.storage.open_store. This module only keeps branches written against the old
path working until they are merged; it can go once nothing imports it.
"""

from __future__ import annotations

from bot.storage.base import USER_FREE_TABLES, SchemaVersionError, StorageError, Store
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import (
    BUSY_TIMEOUT_MS,
    HISTORY_PAGE_USERS,
    MIGRATIONS,
    Migration,
    SqliteStore,
)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "HISTORY_PAGE_USERS",
    "MIGRATIONS",
    "USER_FREE_TABLES",
    "MemoryStore",
    "Migration",
    "SchemaVersionError",
    "SqliteStore",
    "StorageError",
    "Store",
]
