"""The Telegram adapter: translate updates into engine events and replies into Bot API calls.

The only module that imports `telegram`. Each update: load the user's state, let the engine
decide, commit state and history, then answer the tap and show the replies.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes, TypeHandler

from bot.apple_status.status import StatusFeed, StatusReport, Subscription, Verdict, verdict
from bot.channels.telegram.transport import AiohttpRequest
from bot.config import DEFAULT_HISTORY_DAYS
from bot.content.locales import pick_lang
from bot.conversation.engine import (
    Attachment,
    Command,
    Context,
    CopyToUser,
    Effect,
    Engine,
    Event,
    Forget,
    Keyboard,
    RecordUnmatched,
    Reload,
    Reply,
    Result,
    Screenshot,
    ShowStats,
    Subscribe,
    Tap,
    Text,
    ToSupport,
    Unreadable,
    UnreadablePicture,
)
from bot.conversation.state import UserState
from bot.errors import KnowledgeError
from bot.insights.learning import WINDOW_DAYS, Tally
from bot.insights.stats import DAY, build_report, fixes_in_order, render_report
from bot.live import LiveEngine
from bot.ocr import MAX_BYTES as OCR_MAX_BYTES
from bot.ocr import MAX_SIDE as OCR_MAX_SIDE
from bot.ocr import ImageRejected, OcrPool, OcrUnavailable
from bot.storage.store import Store

logger = logging.getLogger(__name__)
T = TypeVar("T")

OCR_TIMEOUT = 20.0  # seconds one screenshot may take to read, queueing included
MAX_RETRIES = 3  # attempts after a 429 before a reply is given up (and logged)
MAX_RETRY_WAIT = 60.0  # seconds: a longer flood wait is not waited out inside one update
LEARN_EVERY = 50  # new history lines before the learned fix order is recomputed…
LEARN_INTERVAL = 60.0  # …at most once per this many seconds
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# Updates handled at once, and Bot API connections: equal, so that no request ever queues inside
# httpcore, whose pool rescans every connection and every queued request on each request. With
# 256 updates over 64 connections a burst cost ~10 ms of CPU per update instead of ~3 as soon as
# the store stopped pacing the requests (benchmarks/bench_bot.py, MemoryStore). 16 requests in
# flight still outrun Telegram's ~30 messages/s at a 100 ms round trip.
CONCURRENT_UPDATES = 16
# Screenshots are read apart from that (seconds of OCR each, on two worker threads), so that
# a burst of pictures never takes the slots that text replies need.
PICTURES_AT_ONCE = 4
CONNECTION_POOL_SIZE = CONCURRENT_UPDATES + PICTURES_AT_ONCE
# Updates fetched from Telegram and waiting for their user's turn or a slot (bounded memory).
MAX_WAITING_UPDATES = 4096
DAY_SECONDS = 86400.0
PRUNE_JOB = "prune-history"


class PerUserProcessor(BaseUpdateProcessor):
    """Process updates concurrently, but each user's updates one at a time and in order.

    A slot is taken only once it is the user's turn, so one user's queue (ten quick taps, a
    screenshot being read) never holds up anybody else; pictures have slots of their own.
    """

    def __init__(
        self,
        max_concurrent_updates: int = CONCURRENT_UPDATES,
        pictures_at_once: int = PICTURES_AT_ONCE,
        max_waiting: int = MAX_WAITING_UPDATES,
    ) -> None:
        super().__init__(max_waiting)
        self._work = asyncio.Semaphore(max_concurrent_updates)
        self._pictures = asyncio.Semaphore(pictures_at_once)
        self._locks: dict[int, tuple[asyncio.Lock, list[int]]] = {}  # key -> (lock, [users])

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        async with self.exclusive(_user_key(update)):
            slots = self._pictures if _has_picture(update) else self._work
            async with slots:
                await coroutine

    @asynccontextmanager
    async def exclusive(self, key: int) -> AsyncIterator[None]:
        """Hold the lock of `key`'s updates (also for work on a user's state from elsewhere)."""
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            # Drop the lock once nobody holds or waits for it, so memory does not grow with
            # users (counted: a released lock looks free before its next waiter has woken).
            users[0] -= 1
            if users[0] == 0 and self._locks.get(key) is entry:
                del self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _has_picture(update: object) -> bool:
    return (
        isinstance(update, Update)
        and update.message is not None
        and (_picture_of(update.message) is not None)
    )


def _user_key(update: object) -> int:
    if isinstance(update, Update):
        chat = update.effective_chat
        if chat is not None and chat.type != ChatType.PRIVATE:
            return chat.id  # a group's updates one at a time, apart from its members' chats
        if update.effective_user is not None:
            return update.effective_user.id
        if update.effective_chat is not None:
            return update.effective_chat.id
    return 0


@dataclass(frozen=True, slots=True)
class Picture:
    """A photo or image file to read before the engine sees it (Telegram-side facts only)."""

    file_id: str
    file_size: int | None
    width: int | None
    height: int | None
    caption: str


def _picture_of(message: Message) -> Picture | None:
    caption = message.caption or ""
    if message.photo:
        best = message.photo[-1]  # Telegram lists the sizes smallest first
        return Picture(best.file_id, best.file_size, best.width, best.height, caption)
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return Picture(document.file_id, document.file_size, None, None, caption)
    return None


def to_event(update: Update) -> Event | Picture | None:
    """Translate a Telegram update into an engine event (None: nothing for us to do)."""
    query = update.callback_query
    if query is not None:
        message_id = query.message.message_id if query.message is not None else None
        return Tap(query.data or "", message_id)
    message = update.message
    if message is None:
        return None
    text = message.text
    if text is not None:
        if text.startswith("/"):
            head, _, arg = text[1:].partition(" ")
            name = head.split("@", 1)[0]
            if name:
                return Command(name, arg.strip())
        return Text(text)
    picture = _picture_of(message)
    if picture is not None:
        return picture
    if message.caption:
        return Text(message.caption)
    for kind in (
        "sticker",
        "photo",
        "voice",
        "video",
        "video_note",
        "audio",
        "document",
        "animation",
        "location",
        "contact",
        "poll",
    ):
        if getattr(message, kind, None):
            return Attachment(kind)
    return Attachment("other")


def to_markup(buttons: Keyboard) -> InlineKeyboardMarkup | None:
    """Translate engine buttons into an inline keyboard."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.label, url=b.url)
                if b.url
                else InlineKeyboardButton(b.label, callback_data=b.data)
                for b in row
            ]
            for row in buttons
        ]
    )


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # int vs timedelta deprecation in PTB 22
        value: int | float | dtm.timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def with_retry(call: Callable[[], Awaitable[T]]) -> T:
    """Run a Bot API call, waiting out 429 flood limits a few times before giving up."""
    for attempt in range(MAX_RETRIES + 1):
        try:
            return await call()
        except RetryAfter as exc:
            wait = _retry_seconds(exc)
            if attempt == MAX_RETRIES or wait > MAX_RETRY_WAIT:
                raise
            logger.warning("flood limit: waiting %.1f s before retrying", wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def _is_not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in exc.message.lower()


def _edit_impossible(exc: BadRequest) -> bool:
    text = exc.message.lower()
    return "message to edit not found" in text or "message can't be edited" in text


@dataclass(slots=True)
class TelegramAdapter:
    """Glue between python-telegram-bot and the engine and store."""

    live: LiveEngine  # the engine in use, swapped by /reload and SIGHUP
    store: Store
    admin_ids: frozenset[int] = frozenset()
    support_chat_id: int | None = None  # the operators' group (SUPPORT_CHAT_ID)
    history_days: int = DEFAULT_HISTORY_DAYS  # history older than this is pruned daily
    status: StatusFeed | None = None  # Apple's System Status feed; None: live status off
    learning: bool = False  # order fixes by their observed solve rate (bot/learning.py)
    ocr: OcrPool | None = None  # reads screenshots; None: Tesseract is not installed
    _learned_for: Engine | None = None  # the engine that holds the current learned order
    _learned_at: float = 0.0
    _new_outcomes: int = 0
    _learning_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def engine(self) -> Engine:
        """Return the engine in use."""
        return self.live.engine

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Handle one update end to end."""
        incoming = to_event(update)
        user = update.effective_user
        chat = update.effective_chat
        if chat is not None and chat.type != ChatType.PRIVATE:
            await self._on_group_update(update, context)
            return
        if incoming is None or user is None or chat is None:
            return
        if isinstance(incoming, Picture):
            event: Event = await self._read_picture(context, chat.id, incoming)
        else:
            event = incoming
        state = await self.store.load(user.id)
        ctx = Context(
            now=time.time(),
            language_code=user.language_code,
            is_admin=user.id in self.admin_ids,
            support=self.support_chat_id is not None,
            user_name=user.full_name,
            user_handle=user.username or "",
        )
        if self.learning and self._learned_for is not self.engine:  # first update, or reloaded
            await self.refresh_learning()
        result = self.engine.handle(state, event, ctx)
        result = await self._with_status(state, event, ctx, result)
        await self.store.save(result.state, result.records)  # committed before we answer
        query = update.callback_query
        if query is not None:
            await self._answer(query.answer, result)
        await self._show(
            context, chat.id, result, query.message.message_id if query and query.message else None
        )
        for effect in result.effects:
            await self._apply(effect, update, context, result.state)
        self._new_outcomes += len(result.records)
        if (
            self.learning
            and self._new_outcomes >= LEARN_EVERY
            and time.time() - self._learned_at >= LEARN_INTERVAL
        ):
            await self.refresh_learning()

    async def _read_picture(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, picture: Picture
    ) -> Screenshot | UnreadablePicture:
        """Download a picture and read its text off the event loop; the bytes are not kept."""
        caption = picture.caption
        if self.ocr is None:
            return UnreadablePicture(Unreadable.UNAVAILABLE, caption)
        if (picture.file_size or 0) > OCR_MAX_BYTES or max(
            picture.width or 0, picture.height or 0
        ) > OCR_MAX_SIDE:
            return UnreadablePicture(Unreadable.TOO_LARGE, caption)
        try:
            await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
            file = await with_retry(lambda: context.bot.get_file(picture.file_id))
            data = bytes(await file.download_as_bytearray())
            text = await self.ocr.read(data, OCR_TIMEOUT)
        except ImageRejected as exc:
            reason = Unreadable.NOT_IMAGE if exc.reason == "not_an_image" else Unreadable.TOO_LARGE
            return UnreadablePicture(reason, caption)
        except (OcrUnavailable, TimeoutError, TelegramError) as exc:
            logger.warning("could not read a picture: %s", exc)
            return UnreadablePicture(Unreadable.UNAVAILABLE, caption)
        logger.info("read %d characters from a picture", len(text))
        return Screenshot(text, caption)

    async def _apply(
        self, effect: Effect, update: Update, context: ContextTypes.DEFAULT_TYPE, state: UserState
    ) -> None:
        """Carry out one side effect the engine asked for (see EFFECT_HANDLERS)."""
        handler = EFFECT_HANDLERS.get(type(effect))
        if handler is None:
            logger.error("no handler for effect %s", type(effect).__name__)
            return
        try:
            await handler(self, effect, update, context, state)
        except TelegramError as exc:
            logger.warning("effect %s failed: %s", type(effect).__name__, exc)

    async def refresh_learning(self) -> None:
        """Recompute the learned fix order from recent history and give it to the engine."""
        async with self._learning_lock:
            if self._learned_for is self.engine and self._new_outcomes == 0:
                return  # another update refreshed it while this one waited
            engine = self.engine
            self._learned_for = engine
            self._learned_at = time.time()
            self._new_outcomes = 0
            try:
                # User by user: the counts stay in memory, not the history lines (100,000
                # users' lines at once cost 240 MB and stalled every update for seconds).
                tally = Tally()
                since = self._learned_at - WINDOW_DAYS * DAY
                async for lines in self.store.outcomes_by_user(since):
                    tally.add_user(lines)
                engine.learned = tally.orders(engine.knowledge)
            except Exception:  # a stale order is no reason to fail the update
                logger.exception("could not learn the fix order; keeping the previous one")
                return
            logger.info(
                "learned the fix order of %d entry/device pairs from %d history lines",
                len(engine.learned),
                tally.lines,
            )

    async def _answer(self, answer: Callable[..., Awaitable[bool]], result: Result) -> None:
        try:
            await with_retry(lambda: answer(text=result.toast, show_alert=result.alert))
        except BadRequest as exc:  # too old, already answered: the reply still goes out
            logger.info("callback answer refused: %s", exc.message)

    async def _show(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, result: Result, tapped: int | None
    ) -> None:
        state = result.state
        for reply in result.replies:
            message = await self._deliver(context, chat_id, reply, tapped)
            if message is None or not reply.anchor or state.walk is None:
                continue
            if state.walk.message_id != message.message_id:
                state = state.with_(walk=replace(state.walk, message_id=message.message_id))
                await self.store.save(state)

    async def _deliver(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, reply: Reply, tapped: int | None
    ) -> Message | None:
        """Edit the tapped message or send a new one; Telegram's refusals are handled here."""
        bot = context.bot
        markup = to_markup(reply.buttons)
        try:
            if reply.edit and tapped is not None:
                try:
                    edited = await with_retry(
                        lambda: bot.edit_message_text(
                            reply.text,
                            chat_id=chat_id,
                            message_id=tapped,
                            parse_mode=ParseMode.HTML,
                            reply_markup=markup,
                            link_preview_options=NO_PREVIEW,
                        )
                    )
                    return edited if isinstance(edited, Message) else None
                except BadRequest as exc:
                    if _is_not_modified(exc):
                        return None
                    if not _edit_impossible(exc):
                        raise
                    logger.info("cannot edit message %s, sending a new one", tapped)
            return await with_retry(
                lambda: bot.send_message(
                    chat_id,
                    reply.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    link_preview_options=NO_PREVIEW,
                )
            )
        except Forbidden as exc:
            logger.info("chat %s is unreachable (%s); skipping", chat_id, exc.message)
        except RetryAfter:
            logger.warning("flood limit persisted; a reply to chat %s was dropped", chat_id)
        return None

    # ----------------------------------------------------------------- groups and operators

    async def _on_group_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Serve the support group; in any other group only point to a private chat."""
        chat = update.effective_chat
        assert chat is not None
        query = update.callback_query
        if query is not None:  # our group posts have no buttons: just stop the spinner
            await self._answer(query.answer, Result(UserState(0)))
            return
        message = update.message
        sender = update.effective_user
        if message is None or sender is None or sender.is_bot:
            return
        if chat.id != self.support_chat_id:
            await self._point_to_private_chat(context, message)
            return
        replied = message.reply_to_message
        if replied is None:  # the operators talking among themselves
            return
        user_id = await self.store.support_user(chat.id, replied.message_id)
        if user_id is None:
            return
        processor = context.application.update_processor
        exclusive: AbstractAsyncContextManager[None] = (
            processor.exclusive(user_id)
            if isinstance(processor, PerUserProcessor)
            else nullcontext()
        )
        async with exclusive:  # the user's own updates wait, and so do we for them
            await self._on_operator_message(update, context, message, user_id)

    async def _on_operator_message(
        self,
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        message: Message,
        user_id: int,
    ) -> None:
        """Deliver an operator's reply to the user, or end the handover on /done."""
        engine = self.engine
        state = await self.store.load(user_id)
        ctx = Context(now=time.time(), support=True)
        event = to_event(update)
        if isinstance(event, Command) and event.name.lower() == "done":
            result = engine.support_done(state, ctx)
        else:
            result = engine.from_support(state, message.text, ctx)
        await self.store.save(result.state, result.records)
        undelivered = False
        for reply in result.replies:
            if await self._deliver(context, user_id, reply, None) is None:
                undelivered = True
        for effect in result.effects:
            await self._apply(effect, update, context, result.state)
        if undelivered:
            await self._post_to_support(
                context, engine.support_undelivered(result.state, ctx), user_id, message
            )

    async def _post_to_support(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        text: str,
        user_id: int,
        reply_to: Message | None = None,
    ) -> Message:
        """Post to the support group and link the post to the user (raises TelegramError)."""
        chat_id = self.support_chat_id
        if chat_id is None:
            raise TelegramError("SUPPORT_CHAT_ID is not set")
        parameters = None
        if reply_to is not None and reply_to.chat.id == chat_id:
            parameters = ReplyParameters(reply_to.message_id, allow_sending_without_reply=True)
        sent = await with_retry(
            lambda: context.bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW,
                reply_parameters=parameters,
            )
        )
        await self.store.link_support_message(chat_id, sent.message_id, user_id, time.time())
        return sent

    async def _point_to_private_chat(
        self, context: ContextTypes.DEFAULT_TYPE, message: Message
    ) -> None:
        """Answer a command addressed to us in a group we do not serve; ignore the rest."""
        text = message.text or ""
        if not text.startswith("/"):
            return
        target = text.split(maxsplit=1)[0].partition("@")[2]
        if target and target.lower() != (context.bot.username or "").lower():
            return  # a command for another bot
        # The operators' way to learn their group's id for SUPPORT_CHAT_ID.
        logger.info(
            "update from group %s (%s), which is not SUPPORT_CHAT_ID",
            message.chat.id,
            message.chat.title,
        )
        lang = pick_lang(None, message.from_user.language_code if message.from_user else None)
        reply = self.engine.locales.t(lang, "group.private_only", bot=context.bot.username)
        try:
            await with_retry(
                lambda: message.reply_text(
                    reply, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
                )
            )
        except TelegramError as exc:
            logger.info("cannot answer in group %s: %s", message.chat.id, exc)

    async def prune(self, context: ContextTypes.DEFAULT_TYPE | None = None) -> None:
        """Delete history older than BOT_HISTORY_DAYS (run at start-up, then daily)."""
        cutoff = time.time() - self.history_days * DAY_SECONDS
        deleted = await self.store.prune(cutoff)
        logger.info("pruned %d history line(s) older than %d days", deleted, self.history_days)

    # ----------------------------------------------------------------- live Apple status

    async def _with_status(
        self, state: UserState, event: Event, ctx: Context, result: Result
    ) -> Result:
        """Decide again with Apple's live status if the reply shows it (the feed is cached)."""
        if self.status is None or not self.engine.wants_status(event, result):
            return result
        report = await self.status.get(self.engine.lang(result.state, ctx))
        if report is None:  # unreachable or malformed: the step keeps its static text
            return result
        return self.engine.handle(state, event, replace(ctx, status=report))

    async def poll_status(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Tell each subscriber once that Apple fixed their outage, then drop the subscription.

        Run by the JobQueue every APPLE_STATUS_POLL_SECONDS; subscriptions live in the store,
        so a restart resumes where the last poll left off.
        """
        if self.status is None:
            return
        reports: dict[str, StatusReport | None] = {}
        now = time.time()
        for sub in await self.store.subscriptions():
            if sub.lang not in reports:
                reports[sub.lang] = await self.status.get(sub.lang)
            decision = verdict(sub, reports[sub.lang], now)
            if decision is Verdict.WAIT:
                continue
            if decision is Verdict.FIXED and not await self._tell_fixed(context, sub):
                continue  # a passing failure: the next poll tries again
            await self.store.unsubscribe(sub)
            logger.info("user %s: status subscription %s", sub.user_id, decision.value)

    async def _tell_fixed(self, context: ContextTypes.DEFAULT_TYPE, sub: Subscription) -> bool:
        """Send the "Apple fixed it" message; return False if it should be retried later."""
        reply = self.engine.status_fixed_reply(sub)
        try:
            await with_retry(
                lambda: context.bot.send_message(
                    sub.chat_id,
                    reply.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=to_markup(reply.buttons),
                    link_preview_options=NO_PREVIEW,
                )
            )
        except (Forbidden, BadRequest) as exc:  # blocked, chat gone: it will not get better
            logger.info("chat %s cannot hear that Apple fixed it: %s", sub.chat_id, exc.message)
        except TelegramError as exc:
            logger.warning("telling chat %s that Apple fixed it failed: %s", sub.chat_id, exc)
            return False
        return True


EffectHandler = Callable[
    [TelegramAdapter, Any, Update, ContextTypes.DEFAULT_TYPE, UserState], Awaitable[None]
]
# What the Telegram channel does for each kind of engine effect; features register theirs here.
EFFECT_HANDLERS: dict[type[Effect], EffectHandler] = {}


async def _subscribe(
    adapter: TelegramAdapter,
    effect: Subscribe,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    state: UserState,
) -> None:
    """Keep the user's wish to hear when Apple fixes the outage (see poll_status)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    sub = Subscription(
        user.id, chat.id, effect.lang, effect.entry, effect.device, effect.services, time.time()
    )
    await adapter.store.subscribe(sub)


EFFECT_HANDLERS[Subscribe] = _subscribe


# ----------------------------------------------------------- outcomes, learning, unmatched


async def _show_stats(
    adapter: TelegramAdapter,
    effect: ShowStats,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    state: UserState,
) -> None:
    """Send an admin the outcome report (HTML, split to Telegram's limit) and the chart."""
    chat = update.effective_chat
    if chat is None:
        return
    from bot.insights.chart import solve_rate_png  # matplotlib: loaded on the first /stats only

    engine = adapter.engine
    now = time.time()
    records = await adapter.store.outcomes_since(now - max(effect.windows) * DAY)
    report = await asyncio.to_thread(build_report, records, now, effect.windows)
    for text in render_report(report, engine.knowledge, engine.locales, effect.lang):

        async def send(text: str = text) -> Message:
            return await context.bot.send_message(
                chat.id, text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
            )

        await with_retry(send)
    widest = max(report.windows, key=lambda w: w.days)
    fixes = fixes_in_order(widest.fixes, engine.knowledge)
    stage_of = {fix_id: fix.stage for fix_id, fix in engine.knowledge.fixes.items()}
    png = await asyncio.to_thread(solve_rate_png, fixes, stage_of)
    caption = engine.locales.t(effect.lang, "stats.chart_caption", days=widest.days)
    await with_retry(
        lambda: context.bot.send_photo(
            chat.id,
            InputFile(png, filename="solve-rate.png"),
            caption=caption,
            parse_mode=ParseMode.HTML,
        )
    )


async def _record_unmatched(
    adapter: TelegramAdapter,
    effect: RecordUnmatched,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    state: UserState,
) -> None:
    """Keep a question that matched nothing (or the choice after it) for `bot unmatched`."""
    await adapter.store.record_unmatched(effect.query)


EFFECT_HANDLERS[ShowStats] = _show_stats
EFFECT_HANDLERS[RecordUnmatched] = _record_unmatched


# ---------------------------------------------------------------- operators: reload, handover


async def _reload(
    adapter: TelegramAdapter,
    effect: Reload,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    state: UserState,
) -> None:
    """Reload knowledge/ and locales/ for an admin; report the outcome or every problem."""
    chat = update.effective_chat
    if chat is None:
        return
    why = f"/reload by {state.user_id}"
    problems = await reload_content(adapter.live, context.application, why)
    if problems is None:
        replies: tuple[Reply, ...] = (adapter.engine.reloaded(effect.lang),)
    else:
        replies = adapter.engine.reload_refused(effect.lang, problems)
    for reply in replies:
        await adapter._deliver(context, chat.id, reply, None)


async def reload_content(
    live: LiveEngine, app: Application[Any, Any, Any, Any, Any, Any], why: str
) -> list[str] | None:
    """Reload the content; return None when swapped in, else the problems (old one kept)."""
    try:
        engine = await live.reload()
    except KnowledgeError as exc:
        problems = [str(p) for p in exc.problems]
    except Exception as exc:  # a bug in loading must not take the running bot down
        logger.exception("%s: reload failed", why)
        problems = [f"{type(exc).__name__}: {exc}"]
    else:
        knowledge = engine.knowledge
        logger.info(
            "%s: reloaded %d entries and %d fixes",
            why,
            len(knowledge.entries),
            len(knowledge.fixes),
        )
        await register_commands(app, engine)  # the menu's texts may have changed
        return None
    logger.error("%s: refused, still using the previous knowledge:", why)
    for problem in problems:
        logger.error("  %s", problem)
    return problems


_RELOADS: set[asyncio.Task[Any]] = set()  # reloads running in the background (SIGHUP)


def reload_in_background(live: LiveEngine, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Start a reload from a signal handler (SIGHUP); its outcome goes to the log."""
    task = asyncio.get_running_loop().create_task(reload_content(live, app, "SIGHUP"))
    _RELOADS.add(task)
    task.add_done_callback(_RELOADS.discard)


async def _to_support(
    adapter: TelegramAdapter,
    effect: ToSupport,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    state: UserState,
) -> None:
    """Post to the support group (and copy the user's photo or file there)."""
    incoming = update.message
    try:
        await adapter._post_to_support(
            context, effect.text, state.user_id, incoming if effect.reply_to_incoming else None
        )
        if effect.copy_incoming and incoming is not None and adapter.support_chat_id is not None:
            chat_id = adapter.support_chat_id
            copied = await with_retry(
                lambda: context.bot.copy_message(chat_id, incoming.chat.id, incoming.message_id)
            )
            await adapter.store.link_support_message(
                chat_id, copied.message_id, state.user_id, time.time()
            )
    except TelegramError as exc:
        logger.warning("support group %s unreachable: %s", adapter.support_chat_id, exc)
        if not effect.from_user:
            return
        # The user's own update is being handled (their lock is held): change their state here.
        current = await adapter.store.load(state.user_id)
        result = adapter.engine.support_unreachable(current, Context(now=time.time()))
        await adapter.store.save(result.state, result.records)
        for reply in result.replies:
            await adapter._deliver(context, state.user_id, reply, None)


async def _copy_to_user(
    adapter: TelegramAdapter,
    effect: CopyToUser,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    state: UserState,
) -> None:
    """Copy an operator's photo or file to the user; tell the group if it cannot arrive."""
    incoming = update.message
    if incoming is None:
        return
    try:
        await with_retry(
            lambda: context.bot.copy_message(state.user_id, incoming.chat.id, incoming.message_id)
        )
    except (Forbidden, BadRequest) as exc:
        logger.info("cannot copy to user %s: %s", state.user_id, exc.message)
        notice = adapter.engine.support_undelivered(state, Context(now=time.time()))
        await adapter._post_to_support(context, notice, state.user_id, incoming)


async def _forget(
    adapter: TelegramAdapter,
    effect: Forget,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    state: UserState,
) -> None:
    """Delete everything stored about the user, then say so in place of the question."""
    await adapter.store.forget(state.user_id)
    logger.info("user %s: deleted everything stored about them (/forget)", state.user_id)
    chat = update.effective_chat
    query = update.callback_query
    if chat is not None:
        tapped = query.message.message_id if query and query.message else None
        await adapter._deliver(context, chat.id, Reply(effect.notice, edit=True), tapped)


EFFECT_HANDLERS[Reload] = _reload
EFFECT_HANDLERS[ToSupport] = _to_support
EFFECT_HANDLERS[CopyToUser] = _copy_to_user
EFFECT_HANDLERS[Forget] = _forget


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log anything unexpected with its traceback; the bot keeps running."""
    if isinstance(context.error, NetworkError) and not isinstance(context.error, BadRequest):
        logger.warning("network error (will retry): %s", context.error)
        return
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("unhandled error in update %s", update_id, exc_info=context.error)


async def register_commands(app: Application[Any, Any, Any, Any, Any, Any], engine: Engine) -> None:
    """Register the command menu in English (default) and Japanese."""
    for lang, code in (("en", None), ("ja", "ja")):
        commands = [BotCommand(name, desc) for name, desc in engine.command_descriptions(lang)]

        async def register(c: list[BotCommand] = commands, lc: str | None = code) -> bool:
            done: bool = await app.bot.set_my_commands(c, language_code=lc)
            return done

        try:
            await with_retry(register)
        except TelegramError as exc:
            logger.warning("could not register the %s command menu: %s", lang, exc)


def build_application(
    token: str,
    base_url: str,
    base_file_url: str,
    live: LiveEngine,
    store: Store,
    admin_ids: frozenset[int] = frozenset(),
    learning: bool = True,
    status: StatusFeed | None = None,
    status_poll_seconds: float = 60.0,
    *,
    support_chat_id: int | None = None,
    history_days: int = DEFAULT_HISTORY_DAYS,
    ocr: OcrPool | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Assemble the python-telegram-bot Application around our adapter."""
    adapter = TelegramAdapter(
        live,
        store,
        admin_ids,
        support_chat_id=support_chat_id,
        history_days=history_days,
        learning=learning,
        status=status,
        ocr=ocr,
    )

    app = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .concurrent_updates(PerUserProcessor())
        # aiohttp instead of PTB's httpx: a quarter of the CPU per Bot API call
        # (bot/telegram_http.py); getUpdates has its own connection, as in PTB's default.
        .request(AiohttpRequest(connection_pool_size=CONNECTION_POOL_SIZE))
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        .build()
    )
    app.add_handler(TypeHandler(Update, adapter.on_update))
    app.add_error_handler(on_error)
    if status is not None:
        if app.job_queue is None:
            logger.warning("no JobQueue (python-telegram-bot[job-queue]): nobody is notified")
        else:  # starts with app.start(), stops (waiting for a poll in flight) with app.stop()
            app.job_queue.run_repeating(
                adapter.poll_status,
                interval=status_poll_seconds,
                first=status_poll_seconds,
                name="apple-status",
            )
    if app.job_queue is None:
        logger.warning("no JobQueue (python-telegram-bot[job-queue]): history is not pruned")
    else:  # daily; serve() runs it once at start-up too
        app.job_queue.run_repeating(adapter.prune, interval=DAY_SECONDS, name=PRUNE_JOB)
    return app


async def serve(
    app: Application[Any, Any, Any, Any, Any, Any], engine: Engine, stop: asyncio.Event
) -> None:
    """Long-poll until stop is set, then finish the updates in flight and shut down."""
    async with app:
        await register_commands(app, engine)
        await app.start()
        if app.job_queue is not None:  # APScheduler cannot start a repeating job right away
            for job in app.job_queue.get_jobs_by_name(PRUNE_JOB):
                await job.run(app)  # the daily prune, once now at start-up
        assert app.updater is not None
        await app.updater.start_polling(allowed_updates=["message", "callback_query"])
        logger.info("bot started, polling for updates")
        await stop.wait()
        logger.info("stopping")
        await app.updater.stop()
        await app.stop()
