"""One turn for any channel, and the schedules that run beside the turns.

A turn: take the user's lock, load their state, let the engine decide (asking Apple's status
feed only when the reply shows it), save the state and the history lines in one transaction,
then answer the tap, show the replies and carry out the effects through the channel port.
The schedules: the learned fix order (recomputed every so many outcomes), pruning of old
history, and telling status subscribers that Apple fixed their outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.apple_status.feed import StatusFeed
from bot.apple_status.report import StatusReport, Subscription, Verdict, verdict
from bot.channels.base import (
    Channel,
    EffectHandlers,
    Incoming,
    MessageRef,
    Turn,
)
from bot.channels.outbox import Outbox
from bot.channels.shared_outbox import SharedOutbox
from bot.conversation.engine import Engine
from bot.conversation.events import Context, Event, Tap, texts_to_match
from bot.conversation.replies import (
    Forget,
    RecordUnmatched,
    Reload,
    Reply,
    Result,
    ShowStats,
    Subscribe,
    ToSupport,
)
from bot.conversation.state import UserState
from bot.insights.learning import WINDOW_DAYS, Tally
from bot.insights.stats import DAY, StatsReport, build_report, render_report
from bot.live import LiveEngine
from bot.matching.ahead import MatchAhead
from bot.storage.base import Store, is_storage_failure
from bot.storage.locks import UserLocks
from bot.storage.queues import Anchor, Kind, Outgoing

if TYPE_CHECKING:
    from bot.ocr import OcrPool  # Pillow and Tesseract: only where pictures are read

logger = logging.getLogger(__name__)

LEARN_EVERY = 50  # new history lines before the learned fix order is recomputed…
LEARN_INTERVAL = 60.0  # …at most once per this many seconds
DAY_SECONDS = 86400.0

Decide = Callable[[Engine, UserState, Context], Result]


@dataclass(slots=True)
class ConversationService:
    """Run turns for one channel: per-user order, state, engine, save, replies, effects."""

    live: LiveEngine  # the engine in use, swapped by /reload and SIGHUP
    store: Store
    channel: Channel
    locks: UserLocks = field(default_factory=UserLocks)
    admin_ids: Collection[int] = frozenset()
    support: bool = False  # a support group is configured: a person can take over
    status: StatusFeed | None = None  # Apple's System Status feed; None: live status off
    learning: Learning | None = None  # order fixes by observed solve rate; None: authored
    clock: Callable[[], float] = time.time
    handlers: EffectHandlers = field(default_factory=EffectHandlers)
    outbox: Outbox = field(init=False)
    ahead: MatchAhead = field(init=False, default_factory=MatchAhead)  # matching, off the loop

    def __post_init__(self) -> None:
        # Several instances on one database deliver a chat's messages under its lock.
        sender = SharedOutbox if self.store.shared else Outbox
        self.outbox = sender(self.store, self.channel, self.locks)
        self.handlers.register(Subscribe, self._subscribe)
        self.handlers.register(RecordUnmatched, self._record_unmatched)
        self.handlers.register(Forget, self._forget)
        self.handlers.register(Reload, self._reload)
        self.handlers.register(ShowStats, self._show_stats)

    def expect(self, event: Event) -> None:
        """Start matching ahead an event whose turn is to come (it waits behind others)."""
        self.ahead.start(self.live.engine.matcher, texts_to_match(event))

    async def handle(self, incoming: Incoming) -> None:
        """Handle one event of a user end to end (marking its inbox update done with the save)."""
        # Scored off the loop (with other turns' texts) before the turn: the engine decides.
        await self.ahead.prepare(self.live.engine.matcher, texts_to_match(incoming.event))
        async with self.locks.hold(incoming.user_id):
            if self.learning is not None:
                await self.learning.before_turn()
            engine = self.live.engine
            state = await self.store.load(incoming.user_id)
            ctx = Context(
                now=self.clock(),
                language_code=incoming.language_code,
                is_admin=incoming.user_id in self.admin_ids,
                support=self.support,
                user_name=incoming.user_name,
                user_handle=incoming.user_handle,
            )
            result = engine.handle(state, incoming.event, ctx)
            result = await self._with_status(engine, state, incoming.event, ctx, result)
            event = incoming.event
            tapped = event.message_id if isinstance(event, Tap) else None
            outgoing = outgoing_of(incoming.chat_id, result, tapped, incoming.callback_id)
            # The state, what to say and the update being done: one transaction.
            rows = await self.store.save(
                result.state, result.records, outgoing=outgoing, update_id=incoming.update_id
            )
            turn = Turn(
                incoming.user_id,
                incoming.chat_id,
                engine,
                result.state,
                tapped,
                incoming.source,
                incoming.language_code,
            )
            try:
                await self.outbox.submit(rows)
                for effect in result.effects:
                    await self.handlers.apply(effect, turn)
                if self.learning is not None:
                    await self.learning.after_turn(len(result.records))
            except Exception as exc:
                if not is_storage_failure(exc):
                    raise
                # The update is done (committed): handling it again would answer twice.
                logger.warning("user %s: an effect failed on the database: %s", turn.user_id, exc)

    async def from_support(
        self,
        user_id: int,
        source: MessageRef,
        text: str | None,
        *,
        done: bool = False,
        update_id: int | None = None,
    ) -> None:
        """An operator answered the user (text, or None for a photo, a file…) or ended it."""
        async with self.locks.hold(user_id):  # the user's own updates wait, and so do we
            engine = self.live.engine
            state = await self.store.load(user_id)
            ctx = Context(now=self.clock(), support=True)
            if done:
                result = engine.support_done(state, ctx)
            else:
                result = engine.from_support(state, text, ctx)
            outgoing = outgoing_of(user_id, result, None, None)
            rows = await self.store.save(
                result.state, result.records, outgoing=outgoing, update_id=update_id
            )
            delivered = await self.outbox.submit(rows)
            turn = Turn(user_id, user_id, engine, result.state, None, source)
            for effect in result.effects:
                await self.handlers.apply(effect, turn)
            if not delivered:  # refused for good (blocked): the operators should know
                notice = engine.support_undelivered(result.state, ctx)
                undelivered = ToSupport(notice, reply_to_incoming=True, from_user=False)
                await self.handlers.apply(undelivered, turn)

    async def follow_up(self, turn: Turn, decide: Decide) -> None:
        """Decide again on the user's current state outside an event (e.g. support unreachable)."""
        async with self.locks.hold(turn.user_id):
            state = await self.store.load(turn.user_id)
            result = decide(turn.engine, state, Context(now=self.clock()))
            outgoing = outgoing_of(turn.chat_id, result, None, None)
            rows = await self.store.save(result.state, result.records, outgoing=outgoing)
            await self.outbox.submit(rows)
            after = replace(turn, state=result.state, tapped=None)
            for effect in result.effects:
                await self.handlers.apply(effect, after)

    async def say(self, chat_id: int, replies: Sequence[Reply], tapped: int | None = None) -> bool:
        """Send replies decided outside a turn (through the outbox); False if refused."""
        return await self.outbox.say([message_of(chat_id, r, tapped) for r in replies])

    async def _with_status(
        self, engine: Engine, state: UserState, event: Event, ctx: Context, result: Result
    ) -> Result:
        """Decide again with Apple's live status if the reply shows it (the feed is cached)."""
        if self.status is None or not engine.wants_status(event, result):
            return result
        report = await self.status.get(engine.lang(result.state, ctx))
        if report is None:  # unreachable or malformed: the step keeps its static text
            return result
        return engine.handle(state, event, replace(ctx, status=report))

    # ------------------------------------------------------------ effects every channel shares

    async def _subscribe(self, effect: Subscribe, turn: Turn) -> None:
        """Keep the user's wish to hear when Apple fixes the outage (see StatusPoller)."""
        sub = Subscription(
            turn.user_id,
            turn.chat_id,
            effect.lang,
            effect.entry,
            effect.device,
            effect.services,
            self.clock(),
        )
        await self.store.subscribe(sub)

    async def _record_unmatched(self, effect: RecordUnmatched, turn: Turn) -> None:
        """Keep a question that matched nothing (or the choice after it) for `bot unmatched`."""
        await self.store.record_unmatched(effect.query)

    async def _forget(self, effect: Forget, turn: Turn) -> None:
        """Delete everything stored about the user, then say so in place of the question."""
        await self.store.forget(turn.user_id)
        logger.info("user %s: deleted everything stored about them (/forget)", turn.user_id)
        await self.say(turn.chat_id, [Reply(effect.notice, edit=True)], turn.tapped)

    async def _reload(self, effect: Reload, turn: Turn) -> None:
        """Reload knowledge/ and locales/ for an admin; report the outcome or every problem."""
        problems = await self.live.reload_reporting(f"/reload by {turn.user_id}")
        engine = self.live.engine
        if problems is None:
            replies: tuple[Reply, ...] = (engine.reloaded(effect.lang),)
        else:
            replies = engine.reload_refused(effect.lang, problems)
        await self.say(turn.chat_id, replies)

    async def _show_stats(self, effect: ShowStats, turn: Turn) -> None:
        """Send an admin the outcome report (as text; the Telegram channel adds the chart)."""
        await self.send_stats(effect, turn)

    async def send_stats(self, effect: ShowStats, turn: Turn) -> StatsReport:
        """Build the outcome report, send it as messages and return it."""
        now = self.clock()
        records = await self.store.outcomes_since(now - max(effect.windows) * DAY)
        report = await asyncio.to_thread(build_report, records, now, effect.windows)
        engine = turn.engine
        texts = render_report(report, engine.knowledge, engine.locales, effect.lang)
        await self.say(turn.chat_id, [Reply(text) for text in texts])
        return report


def message_of(
    chat_id: int, reply: Reply, tapped: int | None, state: UserState | None = None
) -> Outgoing:
    """Return the outbox message for a reply: an edit of the tapped message, or a new one."""
    anchor = None
    if reply.anchor and state is not None and state.walk is not None:
        walk = state.walk
        anchor = Anchor(state.user_id, walk.started_at, walk.message_id)
    if reply.edit and tapped is not None:
        return Outgoing(Kind.EDIT, chat_id, reply.text, reply.buttons, tapped, anchor=anchor)
    return Outgoing(Kind.SEND, chat_id, reply.text, reply.buttons, anchor=anchor)


def outgoing_of(
    chat_id: int, result: Result, tapped: int | None, callback_id: str | None
) -> list[Outgoing]:
    """Return what a turn says: the answer to the button press first, then the replies."""
    outgoing = []
    if callback_id is not None:
        outgoing.append(
            Outgoing(
                Kind.ANSWER, chat_id, result.toast, callback_id=callback_id, alert=result.alert
            )
        )
    outgoing += [message_of(chat_id, r, tapped, result.state) for r in result.replies]
    return outgoing


# ----------------------------------------------------------------------------- schedules


@dataclass(slots=True)
class Learning:
    """The learned fix order: computed on the first turn, after a reload, and every so often."""

    live: LiveEngine
    store: Store
    every: int = LEARN_EVERY
    interval: float = LEARN_INTERVAL
    clock: Callable[[], float] = time.time
    _learned_for: Engine | None = None  # the engine that holds the current learned order
    _learned_at: float = 0.0
    _new_outcomes: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def before_turn(self) -> None:
        """Learn for an engine that has not learned yet (the first turn, or a reload)."""
        if self._learned_for is not self.live.engine:
            await self.refresh()

    async def after_turn(self, new_outcomes: int) -> None:
        """Count a turn's history lines; learn again when enough came in a while apart."""
        self._new_outcomes += new_outcomes
        if self._new_outcomes >= self.every and self.clock() - self._learned_at >= self.interval:
            await self.refresh()

    async def refresh(self) -> None:
        """Recompute the learned fix order from recent history and give it to the engine."""
        # One instance at a time reads the history (the others wait, then read what is new).
        async with self._lock, self.store.job_lock("learning"):
            engine = self.live.engine
            if self._learned_for is engine and self._new_outcomes == 0:
                return  # another turn refreshed it while this one waited
            self._learned_for = engine
            self._learned_at = self.clock()
            self._new_outcomes = 0
            try:
                # User by user: the counts stay in memory, not the history lines (100,000
                # users' lines at once cost 240 MB and stalled every update for seconds).
                tally = Tally()
                since = self._learned_at - WINDOW_DAYS * DAY
                async for lines in self.store.outcomes_by_user(since):
                    tally.add_user(lines)
                engine.learned = tally.orders(engine.knowledge)
            except Exception:  # a stale order is no reason to fail the turn
                logger.exception("could not learn the fix order; keeping the previous one")
                return
            logger.info(
                "learned the fix order of %d entry/device pairs from %d history lines",
                len(engine.learned),
                tally.lines,
            )


async def prune_history(store: Store, days: int, now: float | None = None) -> int:
    """Delete history older than `days` (BOT_HISTORY_DAYS); return how many lines went."""
    cutoff = (time.time() if now is None else now) - days * DAY_SECONDS
    deleted = await store.prune(cutoff)
    logger.info("pruned %d history line(s) older than %d days", deleted, days)
    return deleted


@dataclass(slots=True)
class StatusPoller:
    """Tell each subscriber once that Apple fixed their outage, then drop the subscription.

    Subscriptions live in the store, so a restart resumes where the last poll left off.
    """

    live: LiveEngine
    store: Store
    feed: StatusFeed
    outbox: Outbox
    clock: Callable[[], float] = time.time

    async def poll(self) -> None:
        """Check every subscription against the feed once."""
        reports: dict[str, StatusReport | None] = {}
        now = self.clock()
        for sub in await self.store.subscriptions():
            if sub.lang not in reports:
                reports[sub.lang] = await self.feed.get(sub.lang)
            decision = verdict(sub, reports[sub.lang], now)
            if decision is Verdict.WAIT:
                continue
            if decision is Verdict.FIXED:
                # Into the outbox (delivered and retried from there) before it is dropped.
                reply = self.live.engine.status_fixed_reply(sub)
                await self.outbox.say([message_of(sub.chat_id, reply, None)])
            await self.store.unsubscribe(sub)
            logger.info("user %s: status subscription %s", sub.user_id, decision.value)


@dataclass(frozen=True, slots=True)
class Services:
    """The channel-independent parts a channel is built from (composed in bot/app.py)."""

    live: LiveEngine
    store: Store
    locks: UserLocks = field(default_factory=UserLocks)
    status: StatusFeed | None = None
    learning: Learning | None = None
    ocr: OcrPool | None = None  # reads screenshots; None: Tesseract is not installed

    def conversation(
        self, channel: Channel, *, admin_ids: Collection[int] = frozenset(), support: bool = False
    ) -> ConversationService:
        """Return the service that runs turns through `channel`."""
        return ConversationService(
            self.live,
            self.store,
            channel,
            self.locks,
            admin_ids=admin_ids,
            support=support,
            status=self.status,
            learning=self.learning,
        )
