"""The update processor: each user's updates in order; one the database failed is tried again.

In-process, on a real SQLite file on a small filesystem that really fills up (root only).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Update

from bot.app import live_engine
from bot.channels.base import Incoming, MessageLimits
from bot.channels.telegram.processor import MAX_WAITING_UPDATES, UpdateProcessor
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
