"""The token appears nowhere in the output: start-up refusals, uncaught exceptions, warnings."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.botproc import TOKEN, BotProcess
from tests.support.fakebotapi import FakeBotApi
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow

OTHER_TOKEN = "987654321:ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # well formed, not the fake's


def assert_secret_free(output: str, token: str) -> None:
    assert token not in output
    assert token.split(":")[1] not in output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "ERROR", "CRITICAL"])
@pytest.mark.parametrize("fault", ["wrong path (404)", "wrong token (401)"])
async def test_a_refused_token_is_one_line_without_it(
    api: FakeBotApi, tmp_path: Path, level: str, fault: str
) -> None:
    env = {"LOG_LEVEL": level}
    token = TOKEN
    if "404" in fault:
        env["TELEGRAM_API_BASE_URL"] = api.base_url.replace("/bot", "/wrong/bot")
    else:
        env["TELEGRAM_BOT_TOKEN"] = token = OTHER_TOKEN
    proc = BotProcess(api, tmp_path, **env)
    await proc.start(wait=False)
    assert await proc.wait_exit() == 1
    log = proc.log()
    assert_secret_free(log, token)
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: the Bot API refused the token (getMe): check TELEGRAM_BOT_TOKEN, "
        "and TELEGRAM_API_BASE_URL if it is set"
    ]
    if level != "DEBUG":  # DEBUG shows PTB's own lines (and tracebacks, redacted) before it
        assert "Traceback" not in log
    if level in ("ERROR", "CRITICAL"):  # INFO also shows the database being opened
        assert log.strip().splitlines() == errors
    assert "Unclosed" not in log  # the connections were closed
    assert not api.calls("getUpdates")


async def test_an_unreachable_api_is_one_line(api: FakeBotApi, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/bot"
    proc = BotProcess(api, tmp_path, TELEGRAM_API_BASE_URL=url, LOG_LEVEL="ERROR")
    await proc.start(wait=False)
    assert await proc.wait_exit() == 1
    log = proc.log().strip()
    assert_secret_free(log, TOKEN)
    assert "Traceback" not in log
    assert log.splitlines() == [
        "error: cannot reach the Bot API at start-up (NetworkError): "
        "check the network and TELEGRAM_API_BASE_URL"
    ]


UNCAUGHT = f"""
import asyncio, threading, warnings
from bot.logs import setup_logging
setup_logging("DEBUG", ({TOKEN!r},))
warnings.warn("a warning about {TOKEN}")
thread = threading.Thread(target=lambda: 1 / 0 if False else (_ for _ in ()).throw(
    ValueError("in a thread: {TOKEN}")))
thread.start(); thread.join()

async def fail() -> None:
    raise RuntimeError("in a task: {TOKEN}")

async def main() -> None:
    task = asyncio.get_running_loop().create_task(fail())
    await asyncio.sleep(0.01)
    del task  # never retrieved: asyncio reports it when the task is collected

asyncio.run(main())
raise RuntimeError("uncaught: https://api.telegram.org/bot{TOKEN}/getMe")
"""


def test_uncaught_exceptions_warnings_and_tasks_are_redacted() -> None:
    done = subprocess.run(
        [sys.executable, "-c", UNCAUGHT], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert TOKEN not in output and TOKEN.split(":")[1] not in output
    for seen in ("a warning about <token>", "in a thread: <token>", "uncaught: https://"):
        assert seen in output, output
    assert "in a task: <token>" in output, output
