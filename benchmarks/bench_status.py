"""What the live Apple status costs: parsing a full-size feed, and the status step's latency.

    python -m benchmarks.bench_status [--users 50]

1. parse: `parse_feed` on a feed the size of Apple's (every service, a year of events).
2. step: the real `python -m bot run` against the fake Bot API; `--users` users each paste an
   iCloud Mail error and tap "iPhone" at once, which shows the status step. Measured per user:
   seconds from the tap to its callback answer (the answer goes out after the engine decided,
   so it includes waiting for the feed). Modes: status off; a local feed (one fetch, then the
   shared cache); a feed that never answers (the 3-second deadline); a closed port.
   Also: how many requests reached the feed server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from bot.apple_status.report import parse_feed
from tests.support.botproc import BotProcess
from tests.support.fakebotapi import FakeBotApi
from tests.support.status_feeds import STATUS_DATA as DATA
from tests.support.status_feeds import FeedServer

FIRST_USER = 7_000_000
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def full_size_feed() -> str:
    """Apple's feed has ~60 services; give each a year of resolved events (~1 per week)."""
    doc = json.loads((DATA / "mail_outage.en_US.json").read_text(encoding="utf-8"))
    template = doc["services"][2]["events"][0]  # the resolved Apple Music event
    services = []
    for n in range(60):
        events = [dict(template, messageId=str(n * 100 + k)) for k in range(52)]
        services.append({"redirectUrl": None, "events": events, "serviceName": f"Service {n}"})
    doc["services"] += services
    return json.dumps(doc, ensure_ascii=False)


def bench_parse() -> None:
    body = full_size_feed()
    runs = []
    for _ in range(20):
        start = time.perf_counter()
        report = parse_feed(body)
        runs.append(time.perf_counter() - start)
    assert report is not None
    print(
        f"parse: {len(body) / 1000:.0f} kB, {len(report.services)} services: "
        f"median {statistics.median(runs) * 1000:.1f} ms over {len(runs)} runs"
    )


async def bench_step(users: int, mode: str) -> None:
    async with FeedServer() as gone:
        dead = gone.template  # once the server is gone, its port refuses connections
    env = {"APPLE_STATUS_POLL_SECONDS": "60", "LOG_LEVEL": "WARNING"}
    async with FakeBotApi(token=TOKEN) as api, FeedServer() as feeds:
        feeds.scenario = "mail_outage"
        feeds.mode = "slow" if mode == "slow" else "json"
        env["APPLE_STATUS_URL"] = {"off": "off", "down": dead}.get(mode, feeds.template)
        with tempfile.TemporaryDirectory() as tmp:
            async with BotProcess(api, Path(tmp), **env):
                ids = range(FIRST_USER, FIRST_USER + users)
                for user in ids:
                    api.push_text(user, "iCloud Mail is not working", language_code="en")
                await api.wait_for(lambda: all(api.chat(u) for u in ids), 60, what="questions")
                before = len(api.callback_answers)
                for user in ids:
                    api.push_button(user, "📱 iPhone / iPad", language_code="en")
                await api.wait_for(
                    lambda: len(api.callback_answers) >= before + users, 60, what="answers"
                )
                latencies = [a.latency for a in api.callback_answers[before:]]
                await api.wait_idle()  # each answer goes out just before its step message
                shown = sum(
                    "Apple System Status right now" in (api.chat(u)[-1].text or "") for u in ids
                )
        print(
            f"step, {mode:>4}: {users} taps; answer latency median "
            f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms;"
            f" live status shown to {shown}; feed requests {feeds.total_hits}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()
    bench_parse()
    for mode in ("off", "live", "slow", "down"):
        await bench_step(args.users, mode)


if __name__ == "__main__":
    asyncio.run(main())
