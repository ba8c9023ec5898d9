"""bench_bot --cluster: `python -m bot serve` on PostgreSQL, one process against two.

A throwaway PostgreSQL server (tests/support/postgres.py: initdb, pg_ctl, 127.0.0.1 only, fsync
off), a fresh database per run; the fake Bot API delivers by webhook as Telegram does (one
outstanding update per chat, round robin over the instances: the load balancer). The same two
phases as bench_bot (paste, tap). Runs alternate one, two, one, two… so that a busy machine
slows both alike; the ratio (two / one) is the median of the per-repeat ratios; goal 1.6.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.bench_match import load_labelled
from benchmarks.common import (
    ROOT,
    THROUGHPUT_COLUMNS,
    goal,
    goals_table,
    header,
    table,
    write_result,
)
from benchmarks.procs import Proc, cpu_seconds_of
from tests.support.botproc import TOKEN
from tests.support.fakebotapi import FakeBotApi
from tests.support.postgres import PgServer, find_bin_dir, free_port, start_server, stop_server
from tests.support.serveproc import SECRET

SERVE = ("-m", "bot", "serve")
GOAL = 1.6


class ServeProc(Proc):
    """One `serve` process on a free port of 127.0.0.1; ready once /healthz answers 200."""

    def __init__(self, api: FakeBotApi, workdir: Path, database_url: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        super().__init__(
            api,
            SERVE,
            workdir,
            BOT_DATABASE_URL=database_url,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            BOT_PORT=str(self.port),
            TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{self.port}/telegram",
            APPLE_STATUS_URL="off",
        )

    async def start(self, timeout: float = 60.0) -> float:
        """Start the process; return seconds from spawning it to its first healthy answer."""
        with self.log_path.open("ab") as log:
            self.started_at = time.perf_counter()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.args,
                env=self.env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        url = f"http://127.0.0.1:{self.port}/healthz"
        deadline = time.perf_counter() + timeout
        async with aiohttp.ClientSession() as session:
            while time.perf_counter() < deadline:  # bounded by the deadline
                if self.proc.returncode is not None:
                    raise RuntimeError(f"serve exited {self.proc.returncode}:\n{self.log()}")
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return time.perf_counter() - self.started_at
                except (aiohttp.ClientError, TimeoutError, OSError):
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"serve not healthy after {timeout}s:\n{self.log()[-3000:]}")


def postgres_cpu_seconds(server: PgServer) -> float:
    """CPU seconds of the whole PostgreSQL server: the postmaster, its exited children and
    the ones alive now (backends, WAL writer, checkpointer...)."""
    postmaster = int((server.root / "data" / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds_of(postmaster, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == postmaster:
            total += cpu_seconds_of(int(stat.parent.name))
    return total


class Group:
    """Several processes measured together (CPU summed, memory summed), and their database."""

    def __init__(self, procs: list[ServeProc], server: PgServer) -> None:
        self.procs = procs
        self.server = server

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.procs)

    def database_cpu_seconds(self) -> float:
        return postgres_cpu_seconds(self.server)

    def memory_mb(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for proc in self.procs:
            for key, value in proc.memory_mb().items():
                total[key] = total.get(key, 0.0) + value
        return total


async def run_once(
    instances: int, server: PgServer, database: str, users: int, texts: list[str], timeout: float
) -> dict[str, Any]:
    """Start `instances` serve processes on one database, drive both phases, stop them."""
    from benchmarks.bench_bot import both_phases

    with tempfile.TemporaryDirectory(prefix=f"bench_cluster_{instances}_") as tmp:
        async with FakeBotApi(
            token=TOKEN,
            max_records=200_000,
            callback_query_timeout=120.0,
            multiple_webhook_urls=True,
            webhook_timeout=60.0,
        ) as api:
            database_url = server.url(database)
            procs = [ServeProc(api, Path(tmp) / str(n), database_url) for n in range(instances)]
            try:
                for proc in procs:  # one after the other: the first migrates the schema
                    await proc.start()
                await api.wait_idle(quiet=0.2)
                result: dict[str, Any] = {"instances": instances}
                result |= await both_phases(api, Group(procs, server), users, texts, timeout)
            finally:
                codes = [await proc.stop() for proc in procs]
            result["exit_codes"] = codes
            if any(codes):
                result["log_tail"] = "\n".join(p.log()[-1500:] for p in procs)
            return result


async def run(users: int, repeats: int, timeout: float) -> dict[str, Any]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (initdb, pg_ctl): .ci/run installs it")
    texts = [item.text for item in load_labelled() if item.accepted]
    server = start_server(bin_dir)
    runs: list[dict[str, Any]] = []
    try:
        for repeat in range(repeats):
            for instances in (1, 2):
                database = f"bench_{repeat}_{instances}"
                server.sql(f"CREATE DATABASE {database}")
                result = await run_once(instances, server, database, users, texts, timeout)
                result["repeat"] = repeat
                runs.append(result)
    finally:
        stop_server(bin_dir, server)
    return {"users": users, "repeats": repeats, "runs": runs, "summary": aggregate(runs)}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for instances in (1, 2):
        mine = [r for r in runs if r["instances"] == instances]
        out[str(instances)] = {
            phase: {
                "updates_per_s": statistics.median(r[phase]["updates_per_s"] for r in mine),
                "p50_ms": statistics.median(r[phase]["latency"]["p50_ms"] for r in mine),
                "p99_ms": statistics.median(r[phase]["latency"]["p99_ms"] for r in mine),
                "bot_cpu_s": statistics.median(r[phase]["bot_cpu_s"] for r in mine),
                "fake_cpu_s": statistics.median(r[phase]["fake_cpu_s"] for r in mine),
                "db_cpu_s": statistics.median(r[phase]["db_cpu_s"] for r in mine),
                "busy_cores": statistics.median(_busy_cores(r[phase]) for r in mine),
            }
            for phase in ("paste", "tap")
        }
    ones = [r for r in runs if r["instances"] == 1]
    twos = [r for r in runs if r["instances"] == 2]
    out["ratio"] = {
        phase: round(
            statistics.median(
                t[phase]["updates_per_s"] / o[phase]["updates_per_s"]
                for o, t in zip(ones, twos, strict=True)
            ),
            2,
        )
        for phase in ("paste", "tap")
    }
    cores = os.cpu_count() or 1
    out["cores"] = cores
    # With every process of the one-instance run sharing this machine's cores, no number of
    # instances can go faster than the cores allow: the ceiling of the two/one ratio here.
    out["ceiling"] = {
        phase: round(cores / out["1"][phase]["busy_cores"], 2) for phase in ("paste", "tap")
    }
    return out


def _busy_cores(phase: dict[str, Any]) -> float:
    """Cores kept busy during a phase: CPU of the bots, the fake and driver, and PostgreSQL."""
    cpu = phase["bot_cpu_s"] + phase["fake_cpu_s"] + phase["db_cpu_s"]
    return round(cpu / max(phase["seconds"], 1e-9), 2)


def report(result: dict[str, Any]) -> str:
    summary = result["summary"]
    rows = [
        [
            phase,
            f"{n} serve",
            f"{summary[n][phase]['updates_per_s']:.0f}",
            summary[n][phase]["p50_ms"],
            summary[n][phase]["p99_ms"],
            summary[n][phase]["bot_cpu_s"],
            summary[n][phase]["fake_cpu_s"],
            summary[n][phase]["db_cpu_s"],
            summary[n][phase]["busy_cores"],
            f"{summary['ratio'][phase]:.2f}" if n == "2" else "",
            f"{summary['ceiling'][phase]:.2f}" if n == "2" else "",
        ]
        for phase in ("paste", "tap")
        for n in ("1", "2")
    ]
    return "\n".join(
        [
            header("Webhook instances on PostgreSQL"),
            f"{result['users']} users at once, {result['repeats']} repeats (medians).",
            f"Busy cores: CPU seconds of the serve processes, the fake Bot API with the driver and"
            f" PostgreSQL, over the phase's seconds. Ceiling: this machine's {summary['cores']}"
            " cores over the one-instance run's busy cores, the best two/one can be here.\n",
            table(
                [
                    *THROUGHPUT_COLUMNS,
                    "PostgreSQL CPU s",
                    "busy cores",
                    "2/1",
                    "ceiling",
                ],
                rows,
            ),
            "\n" + goals_table(result["goals"]),
        ]
    )


def main(users: int, repeats: int, timeout: float, out: Path | None, *, smoke: bool) -> int:
    result = asyncio.run(run(users, repeats, timeout))
    result["smoke"] = smoke
    result["goals"] = [
        goal(f"{phase}: two serve / one", result["summary"]["ratio"][phase], GOAL, at_least=True)
        for phase in ("paste", "tap")
    ]
    print(report(result))
    path = write_result("bench_cluster", result, out)
    print(f"\nwritten: {path}")
    return 1 if any(any(r["exit_codes"]) for r in result["runs"]) else 0
