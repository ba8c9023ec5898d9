"""The outbox sender: deliver what turns decided, in order per chat, until the channel takes it.

A turn saves its messages in the outbox with its new state, then hands them here: they go out
at once unless earlier ones of the same chat are still waiting. A passing failure (5xx, a reset
connection, a timeout, a flood limit) is retried in the background, after the wait the channel
asks for or with a growing backoff, while later messages of that chat queue behind it; what the
channel refuses for good (blocked, chat gone, bad request) is dropped with one log line. What a
crash leaves in the outbox is delivered on the next start (`resume`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bot.channels.base import Channel, DeliveryError
from bot.content.locales import Html
from bot.conversation.replies import Reply
from bot.storage.base import Store
from bot.storage.locks import UserLocks
from bot.storage.queues import Anchor, Kind, OutboxRow, Outgoing

logger = logging.getLogger(__name__)

CALLBACK_MAX_AGE = 15.0  # seconds: Telegram refuses to answer an older button press
MAX_AGE = 86400.0  # seconds: a message that found no way through for a day is given up
FIRST_BACKOFF = 0.5  # seconds before the first retry of a passing failure, doubled each time
MAX_BACKOFF = 30.0


@dataclass(slots=True)
class _Lane:
    """One chat's messages waiting, oldest first; `failures` in a row of the first one."""

    rows: deque[OutboxRow]
    failures: int = 0


@dataclass(slots=True)
class Outbox:
    """Deliver outbox rows through a channel: per chat in order, retried, kept across restarts."""

    store: Store
    channel: Channel
    locks: UserLocks
    clock: Callable[[], float] = time.time
    _lanes: dict[int, _Lane] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _delivered: list[int] = field(default_factory=list)  # not yet deleted from the outbox
    _marker: asyncio.Task[None] | None = None

    async def say(self, messages: Sequence[Outgoing]) -> bool:
        """Put messages decided outside a turn in the outbox and deliver them."""
        return await self.submit(await self.store.enqueue(messages))

    async def submit(self, rows: Iterable[OutboxRow]) -> bool:
        """Deliver saved rows now, behind their chat's waiting ones; retry in the background.

        Return False if the channel refused any of them for good right away.
        """
        accepted = True
        for chat_id, chat_rows in _by_chat(rows).items():
            lane = self._lanes.get(chat_id)
            if lane is not None:  # earlier messages of this chat are on their way
                lane.rows.extend(chat_rows)
                continue
            lane = self._lanes[chat_id] = _Lane(deque(chat_rows))
            accepted &= await self._drain(chat_id, lane, inline=True)
        return accepted

    async def resume(self) -> int:
        """Deliver, in the background, what an earlier run left; return how many messages."""
        rows = await self.store.outbox_pending()
        for chat_id, chat_rows in _by_chat(rows).items():
            lane = self._lanes.get(chat_id)
            if lane is not None:
                lane.rows.extendleft(reversed(chat_rows))  # older than anything queued now
                continue
            lane = self._lanes[chat_id] = _Lane(deque(chat_rows))
            self._spawn(chat_id, lane, 0.0)
        if rows:
            logger.info("delivering %d message(s) left from before the restart", len(rows))
        return len(rows)

    @property
    def waiting(self) -> int:
        """Return how many messages wait for a chat whose delivery is held up."""
        return sum(len(lane.rows) for lane in self._lanes.values())

    async def close(self) -> None:
        """Stop retrying; what is left stays in the outbox for the next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._lanes.clear()
        if self._marker is not None:
            await self._marker
        await self._mark_delivered()

    def _spawn(self, chat_id: int, lane: _Lane, wait: float) -> None:
        task = asyncio.create_task(self._later(chat_id, lane, wait))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, chat_id: int, lane: _Lane, wait: float) -> None:
        await asyncio.sleep(wait)
        await self._drain(chat_id, lane, inline=False)

    async def _drain(self, chat_id: int, lane: _Lane, *, inline: bool) -> bool:
        """Deliver the lane's rows in order; on a passing failure wait (in the background)."""
        accepted = True
        done: list[int] = []  # answers and edits delivered: marked with the next write
        while lane.rows:
            row = lane.rows[0]
            try:
                wait = await self._attempt(row, lane, done)
            except DeliveryError:  # refused for good, logged and marked
                wait, accepted = None, False
            if wait is None:
                lane.rows.popleft()
                lane.failures = 0
                continue
            await self._mark(done)
            if inline:  # the turn goes on; the retries do not hold up the user's next update
                self._spawn(chat_id, lane, wait)
                return accepted
            await asyncio.sleep(wait)
        await self._mark(done)
        if self._lanes.get(chat_id) is lane:
            del self._lanes[chat_id]
        return accepted

    async def _attempt(self, row: OutboxRow, lane: _Lane, done: list[int]) -> float | None:
        """Try one row: None when it is finished with, else the seconds to wait before again."""
        message = row.message
        age = self.clock() - row.created_at
        if message.kind is Kind.ANSWER and age > CALLBACK_MAX_AGE:
            logger.info("dropped the answer to a button press of chat %s: too old", message.chat_id)
            done.append(row.id)
            return None
        try:
            message_id = await self._call(message)
        except DeliveryError as exc:
            if exc.permanent:
                logger.info("dropped a %s to chat %s: %s", message.kind, message.chat_id, exc)
                done.append(row.id)
                raise
            lane.failures += 1
            backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (lane.failures - 1))
            wait = exc.retry_after if exc.retry_after is not None else backoff
            too_late = CALLBACK_MAX_AGE if message.kind is Kind.ANSWER else MAX_AGE
            if age + wait > too_late:
                logger.warning(
                    "gave up a %s to chat %s after %d attempts: %s",
                    message.kind,
                    message.chat_id,
                    lane.failures,
                    exc,
                )
                done.append(row.id)
                return None
            logger.info(
                "a %s to chat %s failed (%s); retrying in %.1f s",
                message.kind,
                message.chat_id,
                exc,
                wait,
            )
            return wait
        except Exception:  # a bug: log it, but do not block the chat behind this message
            logger.exception("could not deliver a %s to chat %s", message.kind, message.chat_id)
            done.append(row.id)
            return None
        done.append(row.id)
        anchor = message.anchor
        if anchor is not None and message_id is not None and message_id != anchor.expected:
            await self._mark(done, (anchor, message_id))
        elif message.kind is Kind.SEND or message_id != message.message_id:
            await self._mark(done)  # a new message: sent twice if a crash forgot it was sent
        return None

    async def _call(self, message: Outgoing) -> int | None:
        """Carry out one message; return the id of the message it sent or edited."""
        chat_id = message.chat_id
        if message.kind is Kind.ANSWER:
            assert message.callback_id is not None
            await self.channel.answer(message.callback_id, message.text, message.alert)
            return None
        reply = Reply(Html(message.text or ""), message.buttons)
        if not self.channel.limits.fits(reply.text):  # content or engine bug: the channel refuses
            logger.error("a reply to chat %s is over the channel's length limit", chat_id)
        if message.kind is Kind.EDIT and message.message_id is not None:
            edited = await self.channel.edit(chat_id, message.message_id, reply)
            if edited is not None:
                return edited
            logger.info("cannot edit message %s, sending a new one", message.message_id)
        return await self.channel.send(chat_id, reply)

    async def _mark(self, done: list[int], anchor: tuple[Anchor, int] | None = None) -> None:
        """Note delivered rows: deleted by the marker, many at a time (a group commit)."""
        if anchor is not None:
            try:
                # The user's lock: a turn in flight would otherwise save over the new id.
                async with self.locks.hold(anchor[0].user_id):
                    await self.store.outbox_done(done, anchor)
            except Exception:  # delivered all the same; the next start may send it again
                logger.exception("could not mark %d delivered message(s)", len(done))
            done.clear()
            return
        if not done:
            return
        self._delivered.extend(done)
        done.clear()
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_delivered())

    async def _mark_delivered(self) -> None:
        """Delete the delivered rows noted so far, and those noted meanwhile, until none."""
        while self._delivered:
            batch, self._delivered = self._delivered, []
            try:
                await self.store.outbox_done(batch)
            except Exception:  # delivered all the same; the next start may send them again
                logger.exception("could not mark %d delivered message(s)", len(batch))


def _by_chat(rows: Iterable[OutboxRow]) -> dict[int, list[OutboxRow]]:
    by_chat: dict[int, list[OutboxRow]] = {}
    for row in rows:
        by_chat.setdefault(row.message.chat_id, []).append(row)
    return by_chat
