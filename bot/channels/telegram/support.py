"""The support group: posts about users that a person takes over, and the operators' replies."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from telegram import Bot, Message, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.channels.base import DeliveryError, MessageRef, Turn
from bot.channels.telegram.calls import NO_PREVIEW, delivery_error, with_retry
from bot.channels.telegram.limits import PostBudget
from bot.content.locales import pick_lang
from bot.conversation.events import Context
from bot.conversation.replies import CopyToUser, Reply, ToSupport
from bot.service import ConversationService
from bot.storage.unicode import valid_unicode

logger = logging.getLogger(__name__)

# Posts one user's turns may cause in the group: a few at once, then one every 12 s, so that a
# flood (or handovers opened and closed in a loop) cannot drown the operators' group.
POSTS_BURST = 5
POST_EVERY = 12.0
HINT_EVERY = 600.0  # seconds between two "you are not an operator" hints to one member


@dataclass(frozen=True, slots=True)
class SupportGroup:
    """Serve the operators' group (SUPPORT_CHAT_ID); point any other group to a private chat."""

    bot: Bot
    service: ConversationService
    chat_id: int | None  # None: no handover to a person
    operator_ids: frozenset[int] | None = None  # who is relayed as Support; None: any member
    posts: PostBudget = field(default_factory=lambda: PostBudget(POSTS_BURST, POST_EVERY))
    hints: PostBudget = field(default_factory=lambda: PostBudget(1, HINT_EVERY))

    def register(self) -> None:
        """Carry out the engine's handover effects on Telegram."""
        self.service.handlers.register(ToSupport, self.to_support)
        self.service.handlers.register(CopyToUser, self.copy_to_user)

    async def on_group_update(self, update: Update) -> None:
        """Relay an operator's reply to the user it answers; ignore the rest of the talk."""
        chat = update.effective_chat
        assert chat is not None
        query = update.callback_query
        if query is not None:  # our group posts have no buttons: just stop the spinner
            try:
                await with_retry(query.answer)
            except BadRequest as exc:
                logger.info("callback answer refused: %s", exc.message)
            return
        message = update.message
        sender = update.effective_user
        if message is None or sender is None or sender.is_bot:
            return
        if chat.id != self.chat_id:
            await self._point_to_private_chat(message)
            return
        replied = message.reply_to_message
        if replied is None:  # the operators talking among themselves
            return
        user_id = await self.service.store.support_user(chat.id, replied.message_id)
        if user_id is None:
            return
        if self.operator_ids is not None and sender.id not in self.operator_ids:
            logger.info("member %s of the support group is not an operator: not relayed", sender.id)
            if self.hints.take(sender.id):
                await self._hint_not_operator(message, sender.language_code)
            return
        text = valid_unicode(message.text) if message.text is not None else None
        words = text.split(maxsplit=1) if text else []
        done = bool(words) and words[0].partition("@")[0].lower() == "/done"
        await self.service.from_support(
            user_id,
            MessageRef(chat.id, message.message_id),
            text,
            done=done,
            update_id=update.update_id,
        )

    async def post(self, text: str, user_id: int, reply_to: MessageRef | None = None) -> None:
        """Post to the group and link the post to the user (raises DeliveryError)."""
        chat_id = self.chat_id
        if chat_id is None:
            raise DeliveryError("SUPPORT_CHAT_ID is not set", permanent=True)
        parameters = None
        if reply_to is not None and reply_to.chat_id == chat_id:
            parameters = ReplyParameters(reply_to.message_id, allow_sending_without_reply=True)
        try:
            sent = await with_retry(
                lambda: self.bot.send_message(
                    chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    reply_parameters=parameters,
                )
            )
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        await self.service.store.link_support_message(
            chat_id, sent.message_id, user_id, time.time()
        )

    async def to_support(self, effect: ToSupport, turn: Turn) -> None:
        """Post to the group (and copy the user's photo or file there), within the budget."""
        caused_by_user = turn.source is None or turn.source.chat_id != self.chat_id
        if caused_by_user and not self.posts.take(turn.user_id):
            logger.info("user %s: over the support group's budget, a post dropped", turn.user_id)
            if effect.from_user and self.posts.first_refusal(turn.user_id):
                ctx = Context(now=time.time(), language_code=turn.language_code)
                lang = turn.engine.lang(turn.state, ctx)
                notice = Reply(turn.engine.locales.t(lang, "handover.slow_down"))
                await self.service.say(turn.chat_id, [notice])
            return
        try:
            reply_to = turn.source if effect.reply_to_incoming else None
            await self.post(effect.text, turn.user_id, reply_to)
            if effect.copy_incoming and turn.source is not None:
                await self._copy_to_group(turn.source, turn.user_id)
        except DeliveryError as exc:
            logger.warning("support group %s unreachable: %s", self.chat_id, exc)
            if effect.from_user:  # the user waits on it: end the handover, point to Apple
                await self.service.follow_up(
                    turn, lambda engine, state, ctx: engine.support_unreachable(state, ctx)
                )

    async def _copy_to_group(self, source: MessageRef, user_id: int) -> None:
        chat_id = self.chat_id
        if chat_id is None:
            return
        try:
            copied = await with_retry(
                lambda: self.bot.copy_message(chat_id, source.chat_id, source.message_id)
            )
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        await self.service.store.link_support_message(
            chat_id, copied.message_id, user_id, time.time()
        )

    async def copy_to_user(self, effect: CopyToUser, turn: Turn) -> None:
        """Copy an operator's photo or file to the user; tell the group if it cannot arrive."""
        source = turn.source
        if source is None:
            return
        try:
            await with_retry(
                lambda: self.bot.copy_message(turn.user_id, source.chat_id, source.message_id)
            )
        except (Forbidden, BadRequest) as exc:
            logger.info("cannot copy to user %s: %s", turn.user_id, exc.message)
            notice = turn.engine.support_undelivered(turn.state, Context(now=time.time()))
            await self.post(notice, turn.user_id, source)
        except TelegramError as exc:
            raise delivery_error(exc) from exc

    async def _hint_not_operator(self, message: Message, language_code: str | None) -> None:
        """Tell a member who is not in SUPPORT_OPERATOR_IDS that their reply stays here."""
        lang = pick_lang(None, language_code)
        hint = self.service.live.engine.locales.t(lang, "group.not_operator")
        parameters = ReplyParameters(message.message_id, allow_sending_without_reply=True)
        try:
            await with_retry(
                lambda: self.bot.send_message(
                    message.chat.id,
                    hint,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    reply_parameters=parameters,
                )
            )
        except TelegramError as exc:
            logger.info("cannot hint in the support group: %s", exc)

    async def _point_to_private_chat(self, message: Message) -> None:
        """Answer a command addressed to us in a group we do not serve; ignore the rest."""
        text = message.text or ""
        if not text.startswith("/"):
            return
        target = text.split(maxsplit=1)[0].partition("@")[2]
        if target and target.lower() != (self.bot.username or "").lower():
            return  # a command for another bot
        # The operators' way to learn their group's id for SUPPORT_CHAT_ID.
        logger.info(
            "update from group %s (%s), which is not SUPPORT_CHAT_ID",
            message.chat.id,
            message.chat.title,
        )
        lang = pick_lang(None, message.from_user.language_code if message.from_user else None)
        locales = self.service.live.engine.locales
        reply = locales.t(lang, "group.private_only", bot=self.bot.username)
        try:
            await with_retry(
                lambda: message.reply_text(
                    reply, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
                )
            )
        except TelegramError as exc:
            logger.info("cannot answer in group %s: %s", message.chat.id, exc)
