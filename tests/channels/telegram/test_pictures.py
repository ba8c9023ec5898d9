"""End to end: screenshots of error dialogs are read (OCR) and walked like pasted text."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from PIL import Image

from bot import ocr
from tests.support.botproc import BotProcess
from tests.support.fakebotapi import BotMessage, FakeBotApi
from tests.support.screenshots import generate

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ocr.available(), reason="Tesseract (jpn+eng) is not installed"),
]


def send_photo(
    api: FakeBotApi, user: int, data: bytes, *, caption: str = "", lang: str = "en"
) -> None:
    image = Image.open(io.BytesIO(data))
    file_id = api.add_file(data)
    fields: dict[str, object] = {
        "photo": [api.file_object(file_id, width=image.width, height=image.height)]
    }
    if caption:
        fields["caption"] = caption
    api.push_message(user, language_code=lang, **fields)


def state_of(bot: BotProcess, user: int) -> dict[str, object]:
    with sqlite3.connect(bot.db_path) as db:
        row = db.execute("SELECT state FROM users WHERE user_id = ?", (user,)).fetchone()
    return json.loads(row[0]) if row else {}


def recognised(bot: BotProcess, user: int) -> str | None:
    state = state_of(bot, user)
    walk = state.get("walk")
    if isinstance(walk, dict):
        return str(walk["entry"])
    pending = state.get("pending_entry")
    return str(pending) if pending else None


async def reply(api: FakeBotApi, user: int, count: int = 1) -> BotMessage:
    return (await api.wait_for_messages(user, count, timeout=60))[-1]


async def test_screenshots_are_recognised_end_to_end(api: FakeBotApi, bot: BotProcess) -> None:
    shots = generate(seed=1)
    assert len(shots) >= 30
    for n, (_, data, _) in enumerate(shots):
        send_photo(api, 5000 + n, data, lang="ja" if n % 2 else "en")
    await api.wait_for(
        lambda: all(api.chat(5000 + n) for n in range(len(shots))), timeout=240, what="every reply"
    )
    misses = []
    for n, (name, _, expected) in enumerate(shots):
        got = recognised(bot, 5000 + n)
        if got != expected:
            misses.append((name, expected, got, (api.chat(5000 + n)[-1].text or "")[:120]))
    assert len(misses) <= len(shots) // 10, "\n".join(map(str, misses))
    read = [m for n in range(len(shots)) for m in api.chat(5000 + n) if m.text]
    assert any("I read" in (m.text or "") for m in read)
    assert any("画像から読み取った文字" in (m.text or "") for m in read)
    assert "Traceback" not in bot.log()


async def test_too_large_picture_is_refused_politely(api: FakeBotApi, bot: BotProcess) -> None:
    file_id = api.add_file(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    api.push_message(5100, photo=[api.file_object(file_id, width=5000, height=5000)])
    message = await reply(api, 5100)
    assert "too large" in (message.text or "")
    assert not api.calls("getFile")


async def test_not_an_image_and_caption_fallback(api: FakeBotApi, bot: BotProcess) -> None:
    file_id = api.add_file(b"this is not a picture at all", file_name="error.png")
    api.push_message(
        5101, document=api.file_object(file_id, file_name="error.png", mime_type="image/png")
    )
    message = await reply(api, 5101)
    assert "could not open" in (message.text or "")

    blank = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(blank, "PNG")
    send_photo(api, 5102, blank.getvalue(), caption="Verification failed")
    await reply(api, 5102)
    assert recognised(bot, 5102) == "verification_failed"


async def test_text_replies_are_not_held_up_by_screenshots(
    api: FakeBotApi, bot: BotProcess
) -> None:
    shots = generate(seed=2)[:6]
    for n, (_, data, _) in enumerate(shots):
        send_photo(api, 5200 + n, data)
    api.push_text(5300, "Verification failed")
    await reply(api, 5300)
    # Six screenshots take seconds to read on two OCR workers; the text was answered meanwhile.
    assert sum(1 for n in range(len(shots)) if api.chat(5200 + n)) < len(shots)
    await api.wait_for(lambda: all(api.chat(5200 + n) for n in range(len(shots))), timeout=120)


def lab_tiff() -> bytes:
    """A picture Pillow opens but cannot convert to grey (LAB colour space)."""
    out = io.BytesIO()
    Image.new("LAB", (320, 200), (50, 10, 10)).save(out, "TIFF")
    return out.getvalue()


async def test_a_picture_that_cannot_be_converted_gets_a_polite_answer(
    api: FakeBotApi, bot: BotProcess
) -> None:
    data = lab_tiff()
    as_photo = api.add_file(data)
    api.push_message(5400, photo=[api.file_object(as_photo, width=320, height=200)])
    as_file = api.add_file(data, file_name="dialog.tiff")
    api.push_message(
        5401, document=api.file_object(as_file, file_name="dialog.tiff", mime_type="image/tiff")
    )
    for user in (5400, 5401):
        assert "could not open" in ((await reply(api, user)).text or "")
    assert "Traceback" not in bot.log()


async def test_a_file_without_a_size_is_not_downloaded_past_the_limit(
    api: FakeBotApi, bot: BotProcess
) -> None:
    size = 15 * 1024 * 1024
    data = b"\x89PNG\r\n\x1a\n" + bytes(size - 8)
    file_id = api.add_file(data, file_name="huge.png", hide_size=True)
    document = api.file_object(file_id, file_name="huge.png", mime_type="image/png")
    assert "file_size" not in document
    api.push_message(5402, document=document)
    assert "too large" in ((await reply(api, 5402)).text or "")
    # Stopped at the 10 MB limit (the fake paces its writes, so little more went out).
    assert api.served_bytes(file_id) < 12 * 1024 * 1024
    assert "Traceback" not in bot.log()
