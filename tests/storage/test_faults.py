"""Database faults: a lock held elsewhere only delays; an unusable file is one line, exit 1.

The command-line cases run the real `python -m bot` in a subprocess. Permissions do not bind
root, so when the tests run as root the unwritable cases run that subprocess as `nobody`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.conversation.state import UserState
from bot.storage.base import StorageError
from bot.storage.sqlite import MIGRATIONS, SqliteStore
from tests.support.paths import ROOT
from tests.support.storage import query, record

NOBODY = 65534
TOKEN = "123456:SECRET-token-never-printed"

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


class LockHolder:
    """Another process that holds the database's write lock for a while."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"
        self.since = time.monotonic()

    def wait(self) -> None:
        assert self.process.wait(timeout=60) == 0
        assert self.process.stdout is not None
        self.process.stdout.close()


async def saves_while_locked(db_path: Path, hold: float, **open_options: Any) -> float:
    """Save five users while another process holds the lock; return how long they took."""
    async with await SqliteStore.open(db_path, **open_options) as store:
        holder = LockHolder(db_path, hold)
        users = range(1, 6)
        await asyncio.gather(
            *(store.save(UserState(u, lang="en"), [record(u, float(u))]) for u in users)
        )
        waited = time.monotonic() - holder.since
        holder.wait()
        assert await store.user_count() == 5
        assert [len(await store.history(u)) for u in users] == [1] * 5
    return waited


async def test_a_lock_held_longer_than_the_busy_timeout_delays_and_loses_nothing(
    db_path: Path,
) -> None:
    # SQLite's own wait (0.3 s) runs out many times over: the store's retries carry on.
    waited = await saves_while_locked(db_path, 3.0, busy_timeout_ms=300)
    assert waited >= 2.5


@pytest.mark.slow
async def test_a_lock_held_for_twelve_seconds_with_the_defaults(db_path: Path) -> None:
    waited = await saves_while_locked(db_path, 12.0)
    assert waited >= 11.5


async def test_a_lock_held_past_the_wait_fails_the_save(db_path: Path) -> None:
    async with await SqliteStore.open(db_path, busy_timeout_ms=100, lock_wait=0.5) as store:
        holder = LockHolder(db_path, 3.0)
        with pytest.raises(Exception, match="locked"):
            await store.save(UserState(1))
        holder.wait()
        await store.save(UserState(1))  # and the store works again afterwards
        assert await store.user_count() == 1


# --------------------------------------------------------------------------- unusable files


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder that `nobody` can reach (pytest's tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="bot-faults-"))
    folder.chmod(0o755)
    yield folder
    for path in (folder, *folder.rglob("*")):
        path.chmod(0o777)
    shutil.rmtree(folder)


def run_bot(*args: str, env: dict[str, str] | None = None, as_nobody: bool = False) -> str:
    """Run `python -m bot ARGS`; assert it exits 1 without a traceback; return its stderr."""
    drop: list[str] = []
    if as_nobody:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        # `nobody` cannot read root's cache folder: one of its own for the encoder's table.
        cache = Path(tempfile.gettempdir()) / "bot-faults-cache"
        cache.mkdir(mode=0o777, exist_ok=True)
        cache.chmod(0o777)
        env = {"BOT_CACHE_DIR": str(cache), **(env or {})}
    done = subprocess.run(
        [*drop, sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    return done.stderr


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def make_database(path: Path) -> None:
    async def fill() -> None:
        async with await SqliteStore.open(path) as store:
            await store.save(UserState(1, lang="en"), [record(1, 1.0)])

    asyncio.run(fill())


ROOT_USER = os.geteuid() == 0


@pytest.mark.parametrize("unwritable", ["file", "folder"])
def test_an_unwritable_database_refuses_to_start(shared_dir: Path, unwritable: str) -> None:
    folder = shared_dir / "data"
    folder.mkdir()
    path = folder / "bot.sqlite3"
    make_database(path)
    path.chmod(0o444 if unwritable == "file" else 0o666)
    folder.chmod(0o777 if unwritable == "file" else 0o555)
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "BOT_DB_PATH": str(path)}
    env["TELEGRAM_API_BASE_URL"] = "http://127.0.0.1:9/bot"  # never reached
    for args in (["run"], ["chat", "--db", str(path)]):
        line = one_line(run_bot(*args, env=env, as_nobody=ROOT_USER))
        assert (
            line == f"error: database {path} cannot be written: make the file and its folder"
            " writable by the bot"
        )
    # The data is untouched, and reading it (stats) still works.
    assert query(path, "SELECT user_id, lang FROM users") == [(1, "en")]


def test_a_database_in_a_folder_the_bot_cannot_write_cannot_be_created(shared_dir: Path) -> None:
    path = shared_dir / "bot.sqlite3"  # shared_dir: root's, 0o755
    if not ROOT_USER:
        shared_dir.chmod(0o555)
    line = one_line(run_bot("chat", "--db", str(path), as_nobody=ROOT_USER))
    assert (
        line == f"error: database {path} cannot be opened: make sure its folder exists"
        " and the bot may write there"
    )


def damage(path: Path, how: str) -> None:
    if how == "not sqlite":
        path.write_bytes(b"these are not the bytes you are looking for\n" * 200)
    else:  # a real database whose pages after the first are overwritten
        make_database(path)
        data = bytearray(path.read_bytes())
        data[4096:] = b"\xff" * (len(data) - 4096)
        path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("not sqlite", "is not a SQLite database (damaged, or another kind of file)"),
        ("damaged", "is damaged (SQLite: database disk image is malformed); restore a backup"),
    ],
)
def test_a_corrupt_file_is_one_line_and_exit_1(tmp_path: Path, how: str, reason: str) -> None:
    path = tmp_path / "bot.sqlite3"
    damage(path, how)
    expected = f"error: database {path} {reason}"
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "BOT_DB_PATH": str(path)}
    env["TELEGRAM_API_BASE_URL"] = "http://127.0.0.1:9/bot"
    assert one_line(run_bot("run", env=env)) == expected
    assert one_line(run_bot("chat", "--db", str(path))) == expected
    assert one_line(run_bot("stats", "--db", str(path))) == expected


def test_a_newer_schema_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    make_database(path)
    newer = len(MIGRATIONS) + 1
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO schema_version VALUES (?, 0)", (newer,))
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "BOT_DB_PATH": str(path)}
    env["TELEGRAM_API_BASE_URL"] = "http://127.0.0.1:9/bot"
    expected = (
        f"error: {path} has schema version {newer}, but this bot knows only up to"
        f" {len(MIGRATIONS)}: run a newer bot or use another database"
    )
    for args in (["run"], ["chat", "--db", str(path)], ["stats", "--db", str(path)]):
        assert one_line(run_bot(*args, env=env)) == expected


async def test_open_raises_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    damage(path, "not sqlite")
    with pytest.raises(StorageError, match=f"^database {path} is not a SQLite database"):
        await SqliteStore.open(path)
