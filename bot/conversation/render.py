"""Turn knowledge (fixes, entries, topics) into Telegram-HTML message texts."""

from __future__ import annotations

from bot.content.knowledge import Device, Entry, Fix, Knowledge
from bot.content.locales import Html, Locales, escape

QUOTE_LIMIT = 200  # characters of a user's own text echoed back


def quote(text: str, limit: int = QUOTE_LIMIT) -> Html:
    """Escape a user's text for echoing, shortened to one readable line."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return escape(flat)


def bullet_list(items: tuple[str, ...], mark: str = "•") -> Html:
    """Render items as an escaped bulleted list, one per line."""
    return Html("\n".join(f"{mark} {escape(item)}" for item in items))


def fix_text(
    kb: Knowledge,
    locales: Locales,
    lang: str,
    fix: Fix,
    device: Device,
    position: int,
    total: int,
    header: Html | None = None,
    steps: Html | None = None,
) -> Html:
    """Render one fix for one device: progress, title, why, numbered steps, warnings, notes.

    `steps`, when given, is shown instead of the device's steps (the live Apple status).
    """
    stage = next(s for s in kb.stages if s.id == fix.stage)
    lines: list[str] = []
    if header:
        lines += [header, ""]
    lines.append(
        locales.t(
            lang, "walk.progress", position=position + 1, total=total, stage=stage.title[lang]
        )
    )
    lines.append(Html(f"<b>{escape(fix.title[lang])}</b>"))
    if fix.why is not None:
        lines.append(Html(f"<i>{escape(fix.why[lang])}</i>"))
    if steps is not None:
        lines += ["", steps]
    for section in fix.steps[device] if steps is None else ():
        lines.append("")
        if section.heading is not None:
            lines.append(Html(f"<b>{escape(section.heading[lang])}</b>"))
        lines += [f"{n}. {escape(step)}" for n, step in enumerate(section.steps[lang], 1)]
    if fix.warnings:
        lines += ["", bullet_list(fix.warnings[lang], "⚠️")]
    if fix.notes:
        lines += ["", bullet_list(fix.notes[lang], "ℹ️")]
    lines += ["", locales.t(lang, "walk.question")]
    return Html("\n".join(lines))


def entry_header(locales: Locales, lang: str, entry: Entry) -> Html:
    """Render what was recognised: the entry's title and, if any, its summary."""
    summary = escape(entry.summary[lang]) if entry.summary is not None else Html("")
    return locales.t(lang, "recognised", title=entry.title[lang], summary=summary)


def faq_text(locales: Locales, lang: str, entry: Entry) -> Html:
    """Render a FAQ entry's answer."""
    answer = entry.answer[lang] if entry.answer is not None else ""
    return locales.t(lang, "faq.answer", question=entry.title[lang], answer=answer)


def topic_text(kb: Knowledge, lang: str, topic_id: str) -> Html:
    """Render a topic from info.yaml as a titled list (empty if the topic is absent)."""
    topic = kb.topics.get(topic_id)
    if topic is None:
        return Html("")
    return Html(f"<b>{escape(topic.title[lang])}</b>\n{bullet_list(topic.items[lang])}")
