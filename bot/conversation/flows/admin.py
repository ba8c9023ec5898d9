"""What the people who run the bot ask for: /stats and /reload, and the reload reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.content.locales import Html, escape
from bot.content.text import utf16_len
from bot.conversation.events import Context
from bot.conversation.replies import Reload, Reply, Result, ShowStats
from bot.conversation.state import UserState
from bot.insights.stats import DEFAULT_WINDOWS

if TYPE_CHECKING:
    from bot.conversation.engine import CommandHandler, Engine

MAX_STATS_DAYS = 3650
REPORT_HEADROOM = 296  # UTF-16 units of a message left free under the channel's limit
REPORT_MESSAGES = 5  # messages of reload problems at most; the rest is counted


def _stats(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    if not ctx.is_admin:  # the command does not exist for anyone else
        return eng.say(state, ctx, "unknown_command", command="stats")
    windows = DEFAULT_WINDOWS
    if arg.isdigit() and 1 <= int(arg) <= MAX_STATS_DAYS:
        windows = (int(arg),)
    return Result(state, effects=(ShowStats(eng.lang(state, ctx), windows),))


def _reload(eng: Engine, state: UserState, arg: str, ctx: Context) -> Result:
    if not ctx.is_admin:
        return eng.say(state, ctx, "unknown_command", command="reload")
    return Result(state, effects=(Reload(eng.lang(state, ctx)),))


def reloaded(eng: Engine, lang: str) -> Reply:
    """Report a successful reload (called on the new engine)."""
    return Reply(
        eng.t(
            lang,
            "reload.done",
            entries=len(eng.knowledge.entries),
            fixes=len(eng.knowledge.fixes),
        )
    )


def reload_refused(eng: Engine, lang: str, problems: Sequence[str]) -> tuple[Reply, ...]:
    """Report a refused reload: every problem, escaped, in messages the channel accepts."""
    limit = eng.limits.text - REPORT_HEADROOM
    head = eng.t(lang, "reload.refused", count=len(problems))
    lines = [escape("• " + p[:500]) for p in problems]
    messages: list[list[str]] = [[head]]
    size = utf16_len(head)
    shown = 0
    for line in lines:
        if size + 1 + utf16_len(line) > limit:
            if len(messages) == REPORT_MESSAGES:
                break
            messages.append([])
            size = 0
        messages[-1].append(line)
        size += 1 + utf16_len(line)
        shown += 1
    if shown < len(lines):
        more = eng.t(lang, "reload.more", count=len(lines) - shown)
        if size + 1 + utf16_len(more) > limit:
            messages[-1].pop()
            more = eng.t(lang, "reload.more", count=len(lines) - shown + 1)
        messages[-1].append(more)
    return tuple(Reply(Html("\n".join(m))) for m in messages if m)


COMMANDS: dict[str, CommandHandler] = {
    "reload": _reload,  # admins only
    "stats": _stats,
}
