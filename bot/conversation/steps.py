"""How a walk's position is shown: a fix with its buttons, the final step, the end of a walk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.apple_status.report import STATUS_FIX, StatusReport, status_html
from bot.content.locales import Html
from bot.conversation.callbacks import Action, Callback
from bot.conversation.events import Context
from bot.conversation.flows import status
from bot.conversation.render import fix_text, summary_text
from bot.conversation.replies import Button, Keyboard, Reply
from bot.conversation.state import Walk

if TYPE_CHECKING:
    from bot.conversation.engine import Engine


def is_final(walk: Walk) -> bool:
    """Return True at the walk's last step, which hands over (Apple Support, an administrator)."""
    return walk.position == len(walk.path) - 1


def fix_reply(
    eng: Engine,
    walk: Walk,
    lang: str,
    ctx: Context,
    *,
    edit: bool,
    header: Html | None = None,
    extra: Keyboard = (),
) -> Reply:
    """Show the fix the walk is at, with its buttons (the final step: with the summary)."""
    fix_id = walk.path[walk.position]
    fix = eng.knowledge.fixes[fix_id]  # callers settle the walk on a fix that exists
    # A reload may have removed fixes of a walk in progress: count only those that exist.
    position = sum(1 for f in walk.path[: walk.position] if f in eng.knowledge.fixes)
    total = sum(1 for f in walk.path if f in eng.knowledge.fixes)
    live = _live(eng, walk.entry, fix_id, ctx.status)
    final = is_final(walk)
    text = fix_text(
        eng.knowledge,
        eng.locales,
        lang,
        fix,
        walk.device,
        position,
        total,
        header,
        status_html(eng.locales, lang, live) if live is not None else None,
        show_stage=_shows_stage(eng, walk),
        question=not final,
    )
    if final:
        return _final_reply(eng, walk, Html(text), lang, ctx, edit=edit, extra=extra)

    def data(action: Action) -> str:
        return Callback(action, walk.entry, walk.device, fix_id).encode()

    rows: list[tuple[Button, ...]] = [
        (
            Button(eng.t(lang, "buttons.solved"), data(Action.SOLVED)),
            Button(eng.t(lang, "buttons.next"), data(Action.NEXT)),
        ),
    ]
    if live is not None and live.problems:
        notify = Callback(Action.NOTIFY, walk.entry, walk.device).encode()
        rows.append((Button(eng.t(lang, "status.notify_button"), notify),))
    if fix.link is not None:
        rows.append((Button(fix.link.label[lang], url=fix.link.url[lang]),))
    rows += extra
    nav = [eng.restart_button(lang)]
    if position > 0:
        nav.insert(0, Button(eng.t(lang, "buttons.back"), data(Action.BACK)))
    rows.append(tuple(nav))
    return Reply(text, tuple(rows), edit=edit, anchor=True)


def _shows_stage(eng: Engine, walk: Walk) -> bool:
    """Return False for a fix moved ahead of its stage (a later stage than the fix after it)."""
    entry = eng.knowledge.entries.get(walk.entry)
    if entry is None or entry.order_note is None:
        return True
    rank = {s.id: i for i, s in enumerate(eng.knowledge.stages)}
    fixes = eng.knowledge.fixes
    later = [f for f in walk.path[walk.position + 1 :] if f in fixes]
    here = fixes[walk.path[walk.position]]
    return not later or rank[here.stage] <= rank[fixes[later[0]].stage]


def _final_reply(
    eng: Engine, walk: Walk, text: Html, lang: str, ctx: Context, *, edit: bool, extra: Keyboard
) -> Reply:
    """The last step: who to turn to, a summary to copy; no "did this fix it?", no Solved."""
    fix = eng.knowledge.fixes[walk.path[walk.position]]
    summary = _summary(eng, walk, lang, walk.path[: walk.position])
    rows: list[tuple[Button, ...]] = []
    if fix.link is not None:
        rows.append((Button(fix.link.label[lang], url=fix.link.url[lang]),))
    rows += _ending_rows(eng, walk, lang, ctx)
    rows[-1:-1] = extra
    return Reply(Html(text + "\n\n" + summary), tuple(rows), edit=edit, anchor=True)


def _ending_rows(eng: Engine, walk: Walk, lang: str, ctx: Context) -> list[tuple[Button, ...]]:
    """Talk to a person (with a support group), Back to the last fix tried, Start over."""
    rows: list[tuple[Button, ...]] = []
    if ctx.support:  # a person in the support group can take over
        talk = Callback(Action.HANDOVER, walk.entry, walk.device).encode()
        rows.append((Button(eng.t(lang, "buttons.talk_to_person"), talk),))
    end = min(walk.position, len(walk.path))
    earlier = [f for f in walk.path[:end] if f in eng.knowledge.fixes]
    nav = [eng.restart_button(lang)]
    if earlier:  # Back shows the last fix tried again, recording nothing
        back = Callback(Action.SHOW, walk.entry, walk.device, earlier[-1]).encode()
        nav.insert(0, Button(eng.t(lang, "buttons.back"), back))
    rows.append(tuple(nav))
    return rows


def _summary(eng: Engine, walk: Walk, lang: str, tried: tuple[str, ...]) -> Html:
    titles = tuple(eng.knowledge.fixes[f].title[lang] for f in tried if f in eng.knowledge.fixes)
    entry = eng.knowledge.entries.get(walk.entry)
    return summary_text(eng.locales, lang, entry, walk.device, titles, walk.entry)


def _live(
    eng: Engine, entry_id: str, fix_id: str, report: StatusReport | None
) -> status.Relevant | None:
    return status.live_status(eng, entry_id, report) if fix_id == STATUS_FIX else None


def exhausted_reply(eng: Engine, walk: Walk, lang: str, ctx: Context) -> Reply:
    """Show the end of a walk past its last step (old buttons, or a reload removed it)."""
    url = eng.knowledge.links["contact_support"][lang]
    rows = [(Button(eng.t(lang, "buttons.contact"), url=url),), *_ending_rows(eng, walk, lang, ctx)]
    tried = tuple(f for f in walk.path if f != walk.path[-1]) if walk.path else ()
    text = Html(eng.t(lang, "walk.exhausted") + "\n\n" + _summary(eng, walk, lang, tried))
    return Reply(text, tuple(rows), edit=True, anchor=True)
