"""The parameters the bot passes to each locale string: what its {placeholders} may name.

A locale string may use only the parameters its key is rendered with, so a typo such as
`{qeury}` (even in every language at once) is a `bot check` error rather than a KeyError at
run time. Keys not listed here are rendered without parameters. tests/content/test_locale_params.py
reads every call in bot/ and checks that each literal key gets at least these parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

PARAMS: Mapping[str, frozenset[str]] = {
    key: frozenset(names.split())
    for key, names in {
        "device.ask": "device",
        "device.set": "device",
        "did_you_mean": "query",
        "no_match": "query",
        "none_of_these": "query",
        "faq.answer": "question answer",
        "group.private_only": "bot",
        "handover.from_support": "text",
        "handover.from_user": "name user_id text",
        "handover.from_user_attachment": "name user_id",
        "handover.group_closed": "name user_id",
        "handover.group_ended_by_support": "name user_id",
        "handover.group_ended_by_user": "name user_id",
        "handover.summary": "name username user_id language device entry fixes words",
        "handover.undelivered": "name user_id",
        "picture.read": "text",
        "recognised": "title summary",
        "reload.done": "entries fixes",
        "reload.more": "count",
        "reload.refused": "count",
        "solved": "fix",
        "stats.chart_caption": "days",
        "stats.entry": "title entry",
        "stats.entry_counts": "started solved exhausted abandoned",
        "stats.fix_line": "fix tried solved rate",
        "stats.solved_at": "fix count",
        "stats.title": "days",
        "stats.totals": "started solved exhausted abandoned",
        "status.all_normal": "services",
        "status.event": "type services since",
        "status.fixed": "services",
        "status.since": "time",
        "status.since_raw": "time",
        "status.type.other": "type",
        "unknown_command": "command",
        "walk.for_device": "device",
        "walk.order_note": "note",
        "walk.progress": "position total stage device",
        "walk.progress_plain": "position total device",
        "walk.redrawn": "device",
        "walk.summary": "summary",
        "walk.summary_device": "device",
        "walk.summary_message": "message",
        "walk.summary_problem": "entry",
    }.items()
}
