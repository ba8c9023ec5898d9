"""A throwaway PostgreSQL server for tests: initdb, pg_ctl on a free port, a schema per test.

tests/conftest.py registers the fixtures `pg_server` (one server per session) and `pg_url`.
Without PostgreSQL's binaries (Debian: `apt-get install postgresql`; .ci/run installs it) the
tests that use them are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVICE_USER = "postgres"  # initdb refuses to run as root; Debian's package creates this user


def find_bin_dir() -> Path | None:
    """Return the newest PostgreSQL bin folder that has initdb and pg_ctl, or None."""
    found = [Path(d) for d in glob.glob(BIN_GLOB) if (Path(d) / "initdb").exists()]
    on_path = shutil.which("initdb")
    if on_path:
        found.append(Path(on_path).parent)

    def major(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else 0

    found = [d for d in found if (d / "pg_ctl").exists()]
    return max(found, key=major) if found else None


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class PgServer:
    """A running server: where it listens and how to reach its maintenance database."""

    port: int
    root: Path
    bin_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, url: str | None = None) -> str:
        """Run one statement with psql (in the maintenance database by default)."""
        done = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url or self.url(),
                "-c",
                statement,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout


def _as_service_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv  # a developer's own account may run initdb itself
    if shutil.which("runuser"):
        return ["runuser", "-u", SERVICE_USER, "--", *argv]
    return ["su", SERVICE_USER, "-s", "/bin/sh", "-c", subprocess.list2cmdline(argv)]


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_service_user(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}{tail}")


def start_server(bin_dir: Path, attempts: int = 3) -> PgServer:
    """Initialise a cluster in a fresh temporary folder and start it on 127.0.0.1 only."""
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as
    # the postgres user, which must reach its data and socket folders.
    root = Path(tempfile.mkdtemp(prefix="bot-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    try:
        data.mkdir()
        sockets.mkdir()
        if os.geteuid() == 0:
            for path in (root, data, sockets):
                shutil.chown(path, SERVICE_USER, SERVICE_USER)
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", SERVICE_USER]
        _run([*initdb, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"], "initdb")
        failure = RuntimeError("pg_ctl start: not tried")
        for _ in range(attempts):
            port = free_port()  # free when asked; another process may take it before us
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
            try:
                _run([*pg_ctl, "-w", "start"], "pg_ctl start", log)
            except RuntimeError as exc:
                failure = exc
                continue
            return PgServer(port, root, bin_dir)
        raise failure
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def stop_server(bin_dir: Path, server: PgServer) -> None:
    """Stop the server at once and remove its folder."""
    subprocess.run(
        _as_service_user(
            [str(bin_dir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate", "stop"]
        ),
        check=False,
        capture_output=True,
    )
    shutil.rmtree(server.root, ignore_errors=True)


TEST_DATABASE = "bot_tests"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """Start one throwaway PostgreSQL server for the session; skip without its binaries."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL is not installed (no initdb in {BIN_GLOB} or on PATH)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            pytest.skip(f"running as root and there is no {SERVICE_USER} user to run initdb as")
    server = start_server(bin_dir)
    try:
        server.sql(f"CREATE DATABASE {TEST_DATABASE}")
        yield server
    finally:
        stop_server(bin_dir, server)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """Return the URL of an empty schema of its own for one test; drop it afterwards.

    A schema, not a database: creating a database takes half a second, a schema a few ms.
    asyncpg passes the URL's unknown query parameters as settings, so search_path selects it.
    Synchronous (psql), so that async fixtures can ask for it with getfixturevalue.
    """
    schema = f"test_{uuid.uuid4().hex[:12]}"
    database = pg_server.url(TEST_DATABASE)
    pg_server.sql(f"CREATE SCHEMA {schema}", database)
    yield f"{database}?search_path={schema}"
    pg_server.sql(f"DROP SCHEMA {schema} CASCADE", database)
