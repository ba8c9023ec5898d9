"""Draw the solve rate per fix as a PNG (matplotlib, Agg), for /stats and `bot stats --chart`.

CPU-bound: call it off the event loop (asyncio.to_thread). It draws with matplotlib's object
API (a Figure of its own on an Agg canvas, no pyplot), so calls in threads do not share state.
The picture has no words, only fix ids, numbers and stage ids: the caption carries the
sentence, in the reader's language, and no font for Japanese is needed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from bot.insights.stats import FixStats

MAX_BARS = 40  # Telegram refuses photos taller than 20 times their width
_PALETTE = ("#4e79a7", "#59a14f", "#f28e2b", "#e15759", "#76b7b2", "#b07aa1", "#9c755f")


def solve_rate_png(fixes: Sequence[FixStats], stage_of: Mapping[str, str] | None = None) -> bytes:
    """Return a horizontal bar chart of each fix's solve rate, in the order given, as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    bars = list(fixes)[:MAX_BARS]
    stage_of = stage_of or {}
    stages = list(dict.fromkeys(stage_of.get(f.fix, "?") for f in bars))
    colour = {stage: _PALETTE[i % len(_PALETTE)] for i, stage in enumerate(stages)}

    fig = Figure(figsize=(8.0, max(2.5, 0.32 * len(bars) + 1.4)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ys = list(range(len(bars)))
    ax.barh(
        ys,
        [100.0 * f.rate for f in bars],
        color=[colour[stage_of.get(f.fix, "?")] for f in bars],
    )
    ax.set_yticks(ys, [f.fix for f in bars])
    ax.invert_yaxis()  # the first fix at the top, like the walk
    ax.set_xlim(0, 110)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.grid(axis="x", alpha=0.3)
    for y, f in zip(ys, bars, strict=True):
        ax.text(100.0 * f.rate + 1.0, y, f"{f.solved}/{f.tried}", va="center", fontsize=8)
    if stages and stage_of:
        ax.legend(
            handles=[Patch(color=colour[s], label=s) for s in stages],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
        )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
