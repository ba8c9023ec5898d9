"""The update processor: each user's updates in order; one the database failed is tried again.

In-process, on a real SQLite file on a small filesystem that really fills up (root only).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Bot, Update

from bot.app import live_engine
from bot.channels.base import Incoming, MessageLimits
from bot.channels.telegram.processor import (
    MAX_WAITING_UPDATES,
    UpdateProcessor,
    parse_update,
    user_key,
)
from bot.conversation.events import Text
from bot.conversation.replies import Reply
from bot.matching.ahead import SCORED_AHEAD
from bot.service import Services
from bot.storage.queues import InboxUpdate
from bot.storage.sqlite import SqliteStore
from tests.support.disk import fill, small_filesystem
from tests.support.paths import KNOWLEDGE, LOCALES

EN_ERROR = "There was an error connecting to the Apple ID server."


@dataclass
class Chat:
    """The channel port, keeping the texts it sent."""

    limits: MessageLimits = field(default_factory=MessageLimits)
    texts: list[str] = field(default_factory=list)

    async def send(self, chat_id: int, reply: Reply) -> int:
        self.texts.append(reply.text)
        return len(self.texts)

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> int | None:
        self.texts.append(reply.text)
        return message_id

    async def answer(self, callback_id: str, text: str | None, alert: bool) -> None:
        """Nothing to show."""


def text_update(update_id: int, user: int, text: str) -> dict[str, object]:
    person = {"id": user, "is_bot": False, "first_name": "U"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user, "type": "private"},
            "from": person,
            "text": text,
        },
    }


async def test_an_update_the_database_failed_is_handled_once_it_works(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "disk") as disk:
        async with await SqliteStore.open(disk / "bot.sqlite3") as store:
            chat = Chat()
            service = Services(live_engine(KNOWLEDGE, LOCALES), store).conversation(chat)

            async def handle(update: Update) -> None:
                message = update.message
                assert message is not None and message.text is not None
                await service.handle(Incoming(Text(message.text), 7, 7, update_id=update.update_id))

            processor = UpdateProcessor(handle, store, service.locks)
            raw = [text_update(1, 7, EN_ERROR), text_update(2, 7, "Verification failed")]
            kept = [
                InboxUpdate(1, json.dumps(raw[0]), 0.0),
                InboxUpdate(2, json.dumps(raw[1]), 0.0),
            ]
            assert await store.inbox_add(kept) == [1, 2]
            filler = fill(disk)
            for item in raw:
                processor.submit(Update.de_json(item, None))
            await asyncio.sleep(1.0)
            assert chat.texts == []  # the save failed: nothing said, nothing done
            assert [u.update_id for u in await store.inbox_pending()] == [1, 2]
            filler.unlink()
            await processor.join(20.0)
            assert [u.update_id for u in await store.inbox_pending()] == []
            assert len(chat.texts) == 2
            assert "Apple ID server" in chat.texts[0]  # the user's order kept
            assert "Verification" in chat.texts[1]
            assert (await store.load(7)).pending_entry is not None


def test_every_waiting_update_s_scores_can_be_kept_until_its_turn() -> None:
    assert SCORED_AHEAD >= MAX_WAITING_UPDATES  # else a burst scores some texts twice


async def test_updates_are_matched_ahead_while_they_wait_for_their_turn(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "bot.sqlite3") as store:
        service = Services(live_engine(KNOWLEDGE, LOCALES), store).conversation(Chat())
        matcher = service.live.engine.matcher
        texts = [f"my photos stopped syncing {n}" for n in range(3)]
        turn = asyncio.Event()
        told: list[int] = []

        def received(update: Update) -> None:
            told.append(update.update_id)
            if update.update_id == 4:
                raise RuntimeError("a bug in the head start")
            assert update.message is not None and update.message.text is not None
            service.expect(Text(update.message.text))

        async def handle(update: Update) -> None:
            await turn.wait()  # every turn waits: only the head start runs

        processor = UpdateProcessor(handle, store, service.locks, received=received)
        for n, text in enumerate([*texts, "never told"], start=1):
            processor.submit(Update.de_json(text_update(n, 7, text), None))
        assert told == [1, 2, 3, 4]  # as they are queued, not at their turns
        for _ in range(200):
            if all(matcher.scored_ahead(t) for t in texts):
                break
            await asyncio.sleep(0.01)
        assert all(matcher.scored_ahead(t) for t in texts)
        turn.set()
        await processor.join(10.0)
        assert processor.waiting == 0  # the update whose head start failed was handled too


def tap_update(update_id: int, user: int, date: int = 1_700_000_000) -> dict[str, object]:
    """A button press on a message of the bot that carries a text and a keyboard."""
    person = {"id": user, "is_bot": False, "first_name": "U", "language_code": "ja"}
    keyboard = {"inline_keyboard": [[{"text": "Next", "callback_data": "n:1"}]]}
    message = {
        "message_id": 7,
        "date": date,
        "chat": {"id": user, "type": "private"},
        "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
        "text": "Step 1/3",
        "reply_markup": keyboard,
    }
    query = {"id": "q1", "from": person, "message": message, "chat_instance": "-1", "data": "n:1"}
    return {"update_id": update_id, "callback_query": query}


def test_a_tap_is_parsed_with_what_the_bot_reads_of_its_message() -> None:
    bot = Bot("123:abc")
    raw = tap_update(5, 42)
    sent = json.dumps(raw)
    update = parse_update(raw, bot)
    full = Update.de_json(json.loads(sent), bot)
    assert json.dumps(raw) == sent  # the update as received is kept as it came
    query = update.callback_query
    assert query is not None and full.callback_query is not None
    assert (query.id, query.data, query.from_user, query.chat_instance) == (
        full.callback_query.id,
        full.callback_query.data,
        full.callback_query.from_user,
        full.callback_query.chat_instance,
    )
    assert query.message is not None and query.message.message_id == 7
    assert update.effective_chat == full.effective_chat
    assert update.effective_user == full.effective_user
    assert user_key(update) == user_key(full) == 42
    assert query.message.reply_markup is None  # not read: not parsed


def test_a_tap_on_an_inaccessible_message_is_parsed_as_ptb_parses_it() -> None:
    bot = Bot("123:abc")
    update = parse_update(tap_update(6, 42, date=0), bot)
    full = Update.de_json(tap_update(6, 42, date=0), bot)
    assert update.callback_query is not None and full.callback_query is not None
    tapped, message = update.callback_query.message, full.callback_query.message
    assert tapped is not None and message is not None
    assert (type(tapped), tapped.message_id, tapped.date, tapped.chat) == (
        type(message),
        message.message_id,
        message.date,
        message.chat,
    )


def test_a_text_is_parsed_as_ptb_parses_it() -> None:
    bot = Bot("123:abc")
    raw = text_update(8, 42, EN_ERROR)
    assert parse_update(raw, bot).to_dict() == Update.de_json(raw, bot).to_dict()
