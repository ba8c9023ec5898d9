"""Webhook mode: the real `python -m bot serve` process, fed by the fake Bot API's deliveries."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.support.botproc import BotProcess
from tests.support.fakebotapi import FakeBotApi
from tests.support.paths import ROOT
from tests.support.serveproc import SECRET, ServeProcess

pytestmark = pytest.mark.slow

EN_ERROR = "There was an error connecting to the Apple ID server."


def inbox_ids(path: Path) -> set[int]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT update_id FROM inbox")}


def an_update(update_id: int, user: int = 77, text: str = EN_ERROR) -> bytes:
    sender = {"id": user, "is_bot": False, "first_name": "U", "language_code": "en"}
    message = {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": user, "type": "private", "first_name": "U"},
        "from": sender,
        "text": text,
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


async def test_serve_registers_its_webhook_and_answers_what_telegram_delivers(
    api: FakeBotApi, tmp_path: Path
) -> None:
    async with ServeProcess(api, tmp_path) as serve:
        assert len(api.calls("setWebhook")) == 1
        info = api.webhook.info()
        assert info["url"] == f"{serve.url}/telegram"
        assert info["max_connections"] == 40
        assert info["allowed_updates"] == ["callback_query", "message"]
        assert api.webhook.secret == SECRET
        api.push_text(501, EN_ERROR)
        (question,) = await api.wait_for_messages(501, 1, 20.0)
        api.push_button(501, question.button_texts[0])
        await api.wait_for(lambda: "Step 1" in question.text, 20.0)
        await api.wait_idle(timeout=20.0)
        assert api.pending_updates == 0
        assert await serve.health() == 200
    assert SECRET not in serve.log() and api.token not in serve.log()


async def test_a_wrong_or_missing_secret_is_401_and_nothing_is_kept(
    api: FakeBotApi, tmp_path: Path
) -> None:
    api.add_user(77)
    async with ServeProcess(api, tmp_path) as serve:
        assert await serve.post(an_update(900_001), secret=None) == 401
        assert await serve.post(an_update(900_002), secret="not-the-secret") == 401
        assert await serve.post(an_update(900_003), secret=SECRET + "x") == 401
        assert await serve.post(an_update(900_004)) == 200
        await api.wait_for_messages(77, 1, 20.0)
    assert inbox_ids(serve.db_path) == {900_004}


async def test_a_seen_update_is_200_and_answered_once(api: FakeBotApi, tmp_path: Path) -> None:
    api.add_user(78)
    async with ServeProcess(api, tmp_path) as serve:
        for _ in range(3):
            assert await serve.post(an_update(900_010, user=78)) == 200
        await api.wait_for_messages(78, 1, 20.0)
        await api.wait_idle(timeout=10.0, quiet=0.5)
    assert len(api.chat(78)) == 1


async def test_bad_bodies_are_refused_without_a_traceback(api: FakeBotApi, tmp_path: Path) -> None:
    async with ServeProcess(api, tmp_path) as serve:
        assert await serve.post(b"{not json") == 400
        assert await serve.post(b'{"message": {}}') == 400  # no update_id
        assert await serve.post(b"[1, 2]") == 400
        assert await serve.post(b" " * (1024 * 1024 + 1)) == 413
        assert await serve.health() == 200
    log = serve.log()
    assert log.count("refused a malformed webhook body") == 3
    assert "Traceback" not in log
    assert inbox_ids(serve.db_path) == set()


async def test_serve_needs_the_secret(api: FakeBotApi, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "BOT_DB_PATH": str(tmp_path / "bot.sqlite3"),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode().strip().splitlines() == [
        "error: TELEGRAM_WEBHOOK_SECRET is not set: serve accepts only updates that carry it"
        " (1-256 characters: A-Z, a-z, 0-9, _ and -)"
    ]
    assert api.token not in (out + err).decode()


async def test_polling_removes_a_webhook_first(api: FakeBotApi, tmp_path: Path) -> None:
    async with ServeProcess(api, tmp_path / "serve"):
        assert api.webhook.active
    assert api.webhook.active  # serve leaves it for the next instance
    async with BotProcess(api, tmp_path):  # returns once getUpdates long-polls
        assert not api.webhook.active
        api.push_text(502, EN_ERROR)
        await api.wait_for_messages(502, 1, 20.0)


async def test_serve_refuses_a_taken_port_in_one_line(api: FakeBotApi, tmp_path: Path) -> None:
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        serve = ServeProcess(api, tmp_path)
        serve.env["BOT_PORT"] = str(port)
        await serve.start(wait=False)
        assert await serve.wait_exit(60.0) == 1
    finally:
        taken.close()
        await taken.wait_closed()
    log = serve.log()
    assert f"error: cannot listen on 127.0.0.1:{port}: " in log
    assert "Traceback" not in log and api.token not in log and SECRET not in log
