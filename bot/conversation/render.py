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
    *,
    show_stage: bool = True,
    question: bool = True,
) -> Html:
    """Render one fix for one device: progress, title, why, warnings, numbered steps, notes.

    Warnings come before the steps they warn about. `steps`, when given, is shown instead of
    the device's steps (the live Apple status). `show_stage=False` leaves out the stage label
    (a fix moved ahead of its stage); `question=False` leaves out "Did this fix it?" (the last
    step of a walk, which hands over to someone else).
    """
    device_label = locales.t(lang, f"device.{device.value}")
    lines: list[str] = []
    if header:
        lines += [header, ""]
    if show_stage:
        stage = next(s for s in kb.stages if s.id == fix.stage)
        progress = locales.t(
            lang,
            "walk.progress",
            position=position + 1,
            total=total,
            stage=stage.title[lang],
            device=device_label,
        )
    else:
        progress = locales.t(
            lang, "walk.progress_plain", position=position + 1, total=total, device=device_label
        )
    lines.append(progress)
    lines.append(Html(f"<b>{escape(fix.title[lang])}</b>"))
    if fix.why is not None:
        lines.append(Html(f"<i>{escape(fix.why[lang])}</i>"))
    if fix.warnings:
        lines += ["", bullet_list(fix.warnings[lang], "⚠️")]
    if steps is not None:
        lines += ["", steps]
    for section in fix.steps[device] if steps is None else ():
        lines.append("")
        if section.heading is not None:
            lines.append(Html(f"<b>{escape(section.heading[lang])}</b>"))
        lines += [f"{n}. {escape(step)}" for n, step in enumerate(section.steps[lang], 1)]
    if fix.notes:
        lines += ["", bullet_list(fix.notes[lang], "ℹ️")]
    if question:
        lines += ["", locales.t(lang, "walk.question")]
    return Html("\n".join(lines))


def summary_text(
    locales: Locales,
    lang: str,
    entry: Entry | None,
    device: Device,
    tried: tuple[str, ...],
    entry_id: str,
) -> Html:
    """Render what to tell Apple Support or a person: problem, device, fixes tried, copyable."""
    lines = [
        locales.t(lang, "walk.summary_problem", entry=entry.title[lang] if entry else entry_id)
    ]
    if entry is not None and entry.message is not None:
        lines.append(locales.t(lang, "walk.summary_message", message=entry.message[lang]))
    lines.append(
        locales.t(
            lang, "walk.summary_device", device=locales.t(lang, f"device_name.{device.value}")
        )
    )
    if tried:
        lines.append(locales.t(lang, "walk.summary_tried"))
        lines += [Html(f"- {escape(title)}") for title in tried]
    else:
        lines.append(locales.t(lang, "walk.summary_none"))
    return locales.t(lang, "walk.summary", summary=Html("\n".join(lines)))


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
