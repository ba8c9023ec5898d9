"""Outcomes of walks for the people who run the bot: history lines → walks → report → text.

Pure: the callers load the history (Store.outcomes_since) and send or print the text. The same
report is shown by /stats in Telegram and by `python -m bot stats` in the terminal.

A walk is rebuilt from one user's history lines: it begins at `started` and ends at `solved`,
`exhausted` (every fix tried) or `abandoned` (the user asked something else mid-walk). A fix
counts as *tried* in a walk when the user answered it (✅ Solved or ➡️ Next fix), once per walk
however often they went back and forth; its *solve rate* is the share of the walks that tried it
and were solved by it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.channels.limits import TELEGRAM_TEXT, split_blocks
from bot.content.knowledge import Device, Knowledge
from bot.content.locales import Html, Locales
from bot.conversation.state import Outcome, OutcomeRecord

DAY = 86_400.0
DEFAULT_WINDOWS: tuple[int, ...] = (7, 30)  # days: the periods /stats reports
_ANSWERS = (Outcome.NEXT, Outcome.SOLVED)


# --------------------------------------------------------------------------- walks


@dataclass(frozen=True, slots=True)
class WalkTrace:
    """One walk as rebuilt from history: which fixes were answered and how it ended."""

    user_id: int
    entry: str
    device: Device
    started: bool  # False: it began before the records (or was resumed from an old button)
    tried: tuple[str, ...]  # fixes answered with Solved or Next, first answer first
    end: Outcome | None = None  # solved, exhausted, abandoned, or None while in progress
    fix: str | None = None  # the fix that solved it, or the one it was abandoned at


@dataclass(slots=True)
class _Open:
    user_id: int
    entry: str
    device: Device
    started: bool
    tried: list[str] = field(default_factory=list)
    end: Outcome | None = None
    fix: str | None = None

    def freeze(self) -> WalkTrace:
        return WalkTrace(
            self.user_id,
            self.entry,
            self.device,
            self.started,
            tuple(self.tried),
            self.end,
            self.fix,
        )


def walks(records: Iterable[OutcomeRecord]) -> list[WalkTrace]:
    """Rebuild every walk from history lines (any users, any order of users)."""
    by_user: dict[int, list[OutcomeRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.at):  # stable: same-time lines keep order
        by_user[record.user_id].append(record)
    return [walk for user_records in by_user.values() for walk in user_walks(user_records)]


def user_walks(user_records: Iterable[OutcomeRecord]) -> list[WalkTrace]:
    """Rebuild the walks of one user from their history lines, oldest first."""
    done: list[_Open] = []
    current: _Open | None = None
    for r in user_records:
        if r.outcome is Outcome.STARTED:
            current = _Open(r.user_id, r.entry, r.device, started=True)
            done.append(current)
            continue
        same = current is not None and (current.entry, current.device) == (r.entry, r.device)
        # After "tried everything" the user may go back and still find a fix that works:
        # that is the same walk. After any other ending, a line opens a resumed walk.
        if current is None or not same or current.end not in (None, Outcome.EXHAUSTED):
            current = _Open(r.user_id, r.entry, r.device, started=False)
            done.append(current)
        current.end = None if current.end is Outcome.EXHAUSTED else current.end
        if r.outcome in _ANSWERS and r.fix is not None and r.fix not in current.tried:
            current.tried.append(r.fix)
        if r.outcome in (Outcome.SOLVED, Outcome.ABANDONED, Outcome.EXHAUSTED):
            current.end = r.outcome
            current.fix = r.fix
    return [w.freeze() for w in done]


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class FixStats:
    """How often a fix was tried in a walk, and how often it solved the problem."""

    fix: str
    tried: int
    solved: int

    @property
    def rate(self) -> float:
        """Return the share of the walks that tried this fix and were solved by it."""
        return self.solved / self.tried if self.tried else 0.0


@dataclass(frozen=True, slots=True)
class EntryStats:
    """What became of the walks of one entry."""

    entry: str
    started: int
    solved: int
    exhausted: int
    abandoned: int
    solved_at: tuple[tuple[str, int], ...]  # (fix, walks it solved), most first


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Outcomes over the last `days` days."""

    days: int
    since: float
    entries: tuple[EntryStats, ...]  # most started first
    fixes: tuple[FixStats, ...]  # most tried first

    def total(self, name: str) -> int:
        """Return the sum of one EntryStats counter over every entry."""
        return sum(int(getattr(e, name)) for e in self.entries)


@dataclass(frozen=True, slots=True)
class StatsReport:
    """Outcomes per entry and per fix, for each period asked for."""

    now: float
    windows: tuple[WindowStats, ...]


def window_stats(records: Iterable[OutcomeRecord], days: int, now: float) -> WindowStats:
    """Count the outcomes of the history lines of the last `days` days."""
    since = now - days * DAY
    traces = walks(r for r in records if r.at >= since)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    solved_at: dict[str, Counter[str]] = defaultdict(Counter)
    tried: Counter[str] = Counter()
    solved: Counter[str] = Counter()
    for w in traces:
        c = counts[w.entry]
        c["started"] += w.started
        if w.end is not None:
            c[w.end.value] += 1
        tried.update(w.tried)
        if w.end is Outcome.SOLVED and w.fix is not None:
            solved[w.fix] += 1
            solved_at[w.entry][w.fix] += 1
    entries = [
        EntryStats(
            entry,
            c["started"],
            c[Outcome.SOLVED.value],
            c[Outcome.EXHAUSTED.value],
            c[Outcome.ABANDONED.value],
            tuple(sorted(solved_at[entry].items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for entry, c in counts.items()
    ]
    entries.sort(key=lambda e: (-e.started, -e.solved, e.entry))
    fixes = [FixStats(fix, n, solved[fix]) for fix, n in tried.items()]
    fixes.sort(key=lambda f: (-f.tried, f.fix))
    return WindowStats(days, since, tuple(entries), tuple(fixes))


def build_report(
    records: Sequence[OutcomeRecord], now: float, windows: Sequence[int] = DEFAULT_WINDOWS
) -> StatsReport:
    """Count outcomes for each period (in days) that ends now."""
    return StatsReport(now, tuple(window_stats(records, days, now) for days in windows))


# --------------------------------------------------------------------------- text


def fixes_in_order(fixes: Iterable[FixStats], knowledge: Knowledge | None) -> list[FixStats]:
    """Return fix statistics in the knowledge base's order (stage by stage), unknown ones last."""
    order = {fix_id: i for i, fix_id in enumerate(knowledge.fixes)} if knowledge else {}
    return sorted(fixes, key=lambda f: (order.get(f.fix, len(order)), f.fix))


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f}"


def render_window(
    window: WindowStats, knowledge: Knowledge | None, locales: Locales, lang: str
) -> list[Html]:
    """Render one period as blocks of Telegram HTML (each block a few whole lines)."""
    t = locales.t
    counts = {
        "started": window.total("started"),
        "solved": window.total("solved"),
        "exhausted": window.total("exhausted"),
        "abandoned": window.total("abandoned"),
    }
    blocks = [
        Html(t(lang, "stats.title", days=window.days) + "\n" + t(lang, "stats.totals", **counts))
    ]
    if not window.entries:
        blocks.append(t(lang, "stats.empty"))
        return blocks
    for e in window.entries:
        known = knowledge.entries.get(e.entry) if knowledge else None
        title = known.title[lang] if known else e.entry
        lines = [
            t(lang, "stats.entry", title=title, entry=e.entry),
            t(
                lang,
                "stats.entry_counts",
                started=e.started,
                solved=e.solved,
                exhausted=e.exhausted,
                abandoned=e.abandoned,
            ),
        ]
        lines += [t(lang, "stats.solved_at", fix=fix, count=n) for fix, n in e.solved_at]
        blocks.append(Html("\n".join(lines)))
    lines = [t(lang, "stats.fixes_title")]
    for f in fixes_in_order(window.fixes, knowledge):
        lines.append(
            t(
                lang,
                "stats.fix_line",
                fix=f.fix,
                solved=f.solved,
                tried=f.tried,
                rate=_percent(f.rate),
            )
        )
    blocks.append(Html("\n".join(lines)))
    return blocks


def render_report(
    report: StatsReport,
    knowledge: Knowledge | None,
    locales: Locales,
    lang: str,
    limit: int = TELEGRAM_TEXT,
) -> list[Html]:
    """Render the whole report as messages of at most `limit` UTF-16 units each."""
    blocks: list[Html] = []
    for window in report.windows:
        blocks += render_window(window, knowledge, locales, lang)
    return split_blocks(blocks, limit)
