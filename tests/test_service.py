"""One turn for any channel: a real SQLite file, the real engine, a channel that records."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.app import build_engine, live_engine
from bot.channels.base import DeliveryError, Incoming, MessageLimits, MessageRef, Turn
from bot.content.knowledge import Device
from bot.conversation.engine import Engine
from bot.conversation.events import Command, Tap, Text
from bot.conversation.replies import Reply, Subscribe
from bot.conversation.state import Outcome, OutcomeRecord, UserState
from bot.live import LiveEngine
from bot.service import ConversationService, Learning, Services, prune_history
from bot.storage.locks import UserLocks
from bot.storage.sqlite import SqliteStore
from tests.support.paths import KNOWLEDGE, LOCALES
from tests.support.replies import button

EN_ERROR = "There was an error connecting to the Apple ID server."
USER = 501
ADMIN = 9


@dataclass
class Shown:
    """One call the service made on the channel."""

    kind: str  # send, edit, answer
    chat_id: int | str
    message_id: int | None = None
    reply: Reply | None = None
    text: str | None = None


@dataclass
class RecordingChannel:
    """The channel port, keeping what it was asked to show; chats in `refuse` are blocked."""

    limits: MessageLimits = field(default_factory=MessageLimits)
    calls: list[Shown] = field(default_factory=list)
    refuse: set[int] = field(default_factory=set)
    gone: set[int] = field(default_factory=set)  # messages that can no longer be edited
    hold: asyncio.Event | None = None  # when set, send waits for it
    next_id: int = 100

    async def send(self, chat_id: int, reply: Reply) -> int:
        if self.hold is not None:
            await self.hold.wait()
        if chat_id in self.refuse:
            raise DeliveryError("Forbidden: bot was blocked by the user", permanent=True)
        self.next_id += 1
        self.calls.append(Shown("send", chat_id, self.next_id, reply))
        return self.next_id

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> int | None:
        if message_id in self.gone:
            return None
        self.calls.append(Shown("edit", chat_id, message_id, reply))
        return message_id

    async def answer(self, callback_id: str, text: str | None, alert: bool) -> None:
        self.calls.append(Shown("answer", callback_id, text=text))

    def last(self, kind: str = "send") -> Shown:
        return [c for c in self.calls if c.kind == kind][-1]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with await SqliteStore.open(tmp_path / "bot.sqlite3") as opened:
        yield opened


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(KNOWLEDGE, LOCALES)


def service_for(
    store: SqliteStore, channel: RecordingChannel, live: LiveEngine, **kwargs: bool
) -> ConversationService:
    return Services(live, store).conversation(channel, admin_ids={ADMIN}, **kwargs)


def live_of(engine: Engine) -> LiveEngine:
    return LiveEngine(engine, lambda: engine)


def text(user: int, words: str) -> Incoming:
    return Incoming(Text(words), user, user, "en", source=MessageRef(user, 1))


def tap(user: int, shown: Shown, label: str) -> Incoming:
    assert shown.reply is not None and shown.message_id is not None
    return Incoming(
        Tap(button(shown.reply, label), shown.message_id), user, user, "en", callback_id="cb"
    )


async def test_a_turn_saves_then_answers(store: SqliteStore, engine: Engine) -> None:
    channel = RecordingChannel()
    service = service_for(store, channel, live_of(engine))
    await service.handle(text(USER, EN_ERROR))
    asked = channel.last()
    assert asked.chat_id == USER and "Which device" in asked.reply.text  # type: ignore[union-attr]
    assert (await store.load(USER)).pending_entry == "apple_id_server_error"

    await service.handle(tap(USER, asked, "iPhone"))
    answer, edit = channel.calls[-2:]
    assert answer.kind == "answer" and answer.chat_id == "cb"
    assert edit.kind == "edit" and edit.message_id == asked.message_id
    state = await store.load(USER)
    assert state.walk is not None and state.walk.message_id == asked.message_id
    assert [r.outcome for r in await store.history(USER)] == [Outcome.STARTED]


async def test_a_message_that_cannot_be_edited_is_sent_anew(
    store: SqliteStore, engine: Engine
) -> None:
    channel = RecordingChannel()
    service = service_for(store, channel, live_of(engine))
    await service.handle(text(USER, EN_ERROR))
    asked = channel.last()
    assert asked.message_id is not None
    channel.gone.add(asked.message_id)
    await service.handle(tap(USER, asked, "Mac"))
    step = channel.last()
    assert step.message_id != asked.message_id and "Step 1/" in step.reply.text  # type: ignore[union-attr]
    state = await store.load(USER)
    assert state.walk is not None and state.walk.message_id == step.message_id  # the new anchor


async def test_a_blocked_chat_still_gets_its_state_saved(
    store: SqliteStore, engine: Engine
) -> None:
    channel = RecordingChannel(refuse={USER})
    service = service_for(store, channel, live_of(engine))
    await service.handle(text(USER, EN_ERROR))
    assert channel.calls == []
    assert (await store.load(USER)).pending_entry == "apple_id_server_error"


async def test_one_users_turns_run_in_order(store: SqliteStore, engine: Engine) -> None:
    """The second turn loads the state only after the first one saved and answered."""
    channel = RecordingChannel(hold=asyncio.Event())
    service = service_for(store, channel, live_of(engine))
    first = asyncio.create_task(service.handle(text(USER, EN_ERROR)))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(service.handle(Incoming(Command("device"), USER, USER, "en")))
    other = asyncio.create_task(service.handle(Incoming(Command("help"), USER + 1, USER + 1)))
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done() and not other.done()
    assert channel.hold is not None
    channel.hold.set()
    await asyncio.gather(first, second, other)
    mine = [c.reply.text for c in channel.calls if c.chat_id == USER and c.reply]
    assert "Which device" in mine[0] and "Your device" in mine[1]
    assert len(service.locks) == 0  # nobody holds a lock any more: none is kept


async def test_forget_deletes_and_says_so_in_place(
    store: SqliteStore, engine: Engine, tmp_path: Path
) -> None:
    channel = RecordingChannel()
    service = service_for(store, channel, live_of(engine))
    await service.handle(text(USER, EN_ERROR))
    await service.handle(Incoming(Command("forget"), USER, USER, "en"))
    ask = channel.last()
    await service.handle(tap(USER, ask, "delete"))
    assert channel.last("edit").message_id == ask.message_id
    with closing(sqlite3.connect(tmp_path / "bot.sqlite3")) as db:
        assert db.execute("SELECT count(*) FROM users WHERE user_id = ?", (USER,)).fetchone() == (
            0,
        )


async def test_unmatched_questions_are_kept(store: SqliteStore, engine: Engine) -> None:
    service = service_for(store, RecordingChannel(), live_of(engine))
    await service.handle(text(USER, "my toaster sings at night"))
    [kept] = await store.unmatched_since(0)
    assert "toaster" in kept.text


async def test_a_subscription_is_kept_for_the_chat(store: SqliteStore, engine: Engine) -> None:
    service = service_for(store, RecordingChannel(), live_of(engine))
    await store.save(UserState(USER))  # a subscription belongs to a known user
    turn = Turn(USER, USER + 1000, engine, UserState(USER))
    effect = Subscribe("apple_id_server_error", Device.IPHONE, "en", ("iCloud Mail",))
    await service.handlers.apply(effect, turn)
    [sub] = await store.subscriptions()
    assert (sub.user_id, sub.chat_id, sub.services) == (USER, USER + 1000, ("iCloud Mail",))


async def test_reload_by_an_admin_reports_problems_then_success(
    store: SqliteStore, tmp_path: Path
) -> None:
    knowledge, locales = tmp_path / "knowledge", tmp_path / "locales"
    shutil.copytree(KNOWLEDGE, knowledge)
    shutil.copytree(LOCALES, locales)
    live = live_engine(knowledge, locales)
    channel = RecordingChannel()
    service = service_for(store, channel, live)
    fixes = knowledge / "fixes.yaml"
    good = fixes.read_text(encoding="utf-8")
    fixes.write_text(good + "\n  - oops: [\n", encoding="utf-8")
    before = live.engine
    await service.handle(Incoming(Command("reload"), ADMIN, ADMIN, "en"))
    assert "fixes.yaml" in channel.last().reply.text  # type: ignore[union-attr]
    assert live.engine is before
    fixes.write_text(good, encoding="utf-8")
    await service.handle(Incoming(Command("reload"), ADMIN, ADMIN, "en"))
    assert live.engine is not before
    await service.handle(Incoming(Command("reload"), USER, USER, "en"))  # not an admin
    assert "/help" in channel.last().reply.text  # type: ignore[union-attr]


async def test_stats_for_an_admin_as_text(store: SqliteStore, engine: Engine) -> None:
    channel = RecordingChannel()
    service = service_for(store, channel, live_of(engine))
    await service.handle(Incoming(Command("stats"), ADMIN, ADMIN, "en"))
    assert "Outcomes" in channel.last().reply.text  # type: ignore[union-attr]


async def test_learning_orders_fixes_after_enough_outcomes(
    store: SqliteStore, engine: Engine
) -> None:
    live = LiveEngine(build_engine(KNOWLEDGE, LOCALES), lambda: engine)
    now = 1_000_000.0
    learning = Learning(live, store, every=2, interval=0.0, clock=lambda: now)
    path = live.engine.knowledge.path_for("cannot_connect_icloud", Device.MAC)
    late = path[-1]
    for user in range(40):  # the last fix solves it for everybody
        records = [
            OutcomeRecord(user, "cannot_connect_icloud", Device.MAC, None, Outcome.STARTED, now),
            OutcomeRecord(user, "cannot_connect_icloud", Device.MAC, late, Outcome.SOLVED, now),
        ]
        await store.save(UserState(user), records)
    await learning.before_turn()
    learned = live.engine.learned
    assert ("cannot_connect_icloud", Device.MAC) in learned
    await learning.after_turn(1)  # under `every`: nothing recomputed
    assert live.engine.learned is learned
    await learning.after_turn(1)  # `every` reached: learned again
    assert live.engine.learned is not learned


async def test_prune_history(store: SqliteStore) -> None:
    old = OutcomeRecord(USER, "cannot_connect_icloud", Device.MAC, None, Outcome.STARTED, 0.0)
    new = OutcomeRecord(USER, "cannot_connect_icloud", Device.MAC, None, Outcome.STARTED, 9.5e5)
    await store.save(UserState(USER), [old, new])
    assert await prune_history(store, days=1, now=1e6) == 1
    assert [r.at for r in await store.history(USER)] == [9.5e5]


async def test_user_locks_are_reentrant_within_a_task_only() -> None:
    locks = UserLocks()
    order: list[str] = []

    async def nested() -> None:
        async with locks.hold(1), locks.hold(1):  # the same task: no deadlock
            order.append("nested")
            await asyncio.sleep(0.02)

    async def other() -> None:
        async with locks.hold(1):
            order.append("other")

    await asyncio.gather(nested(), other())
    assert order == ["nested", "other"]
    assert len(locks) == 0


async def test_a_reply_over_the_channels_limit_is_logged(
    store: SqliteStore, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    channel = RecordingChannel(limits=MessageLimits(text=20))
    service = service_for(store, channel, live_of(engine))
    await service.handle(Incoming(Command("help"), USER, USER, "en"))
    assert "over the channel's length limit" in caplog.text
    assert channel.last().reply is not None  # still tried: the channel decides
