"""Matching: accuracy per scorer on both labelled splits and latency per message, beside baselines.

    python -m benchmarks.bench_match [--smoke] [--out FILE]

Accuracy on tests/data/queries.yaml (the tuning split, on which every threshold was chosen) and
tests/data/queries_holdout.yaml (the held-out split, never tuned on: it only measures), for our
three scorers (bot.matching.matcher.Scorer: lexical, semantic, blend = what the bot uses) and, in
the same run over the same patterns (every entry's and asked-about topic's title, message and
patterns in both languages), two baselines:

* difflib: difflib.SequenceMatcher.ratio() on normalised text (bot.matching.normalize), best
  pattern's entry, accepted from a threshold. Timed twice: plainly (ratio() of every pattern, the
  baseline of the goal) and as difflib.get_close_matches does it (ratio() only where the cheap
  upper bounds real_quick_ratio() and quick_ratio() could beat the best so far: the same
  answers, far fewer ratio() calls);
* wratio: rapidfuzz fuzz.WRatio on the raw texts (process.extractOne), same rule.

A baseline has no margin and no "did you mean": it answers its best entry from its threshold
on, else nothing. Its threshold is the one (0-100, steps of 0.5) that gives it the highest
accuracy on the tuning split (the middle of the best range), as ours were chosen there.

Per split and scorer: positives recognised directly; recognised or asked with the right entry
among the "did you mean" choices; negatives rejected (no entry claimed).

Latency: for the real knowledge base with the encoder (blend: one encoder call and the lexical
scorer per message; the encoder's share on its own) and, lexical only, generated ones of 1,000
and 10,000 entries (benchmarks/synthetic.py; embedding 190,000 patterns is not a real case),
each labelled query alone (`match`; a query's time is the median of a few rounds, so that
another process stealing the CPU for a moment does not count; p50 and p99 are across the
queries) and all of them at once (`match_many`, per query). The baselines are timed on the same
queries, interleaved with ours query by query so that a busy machine slows both alike; the slow
ones on a bounded, evenly spaced sample (the `n` in the table). Start-up: the encoder's load,
the embedding of every pattern and the RSS they add, in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rapidfuzz import fuzz, process

from benchmarks.common import (
    ROOT,
    goal,
    goals_table,
    header,
    percentile,
    summary_ms,
    table,
    write_result,
)
from benchmarks.synthetic import generated_knowledge
from bot.app import load_content
from bot.content.knowledge import Knowledge
from bot.matching.matcher import CALIBRATIONS, Matcher, Scorer, matchable
from bot.matching.normalize import Normalizer

QUERIES = ROOT / "tests" / "data" / "queries.yaml"
HOLDOUT = ROOT / "tests" / "data" / "queries_holdout.yaml"
SPLITS = {"tuning": QUERIES, "holdout": HOLDOUT}
THRESHOLDS = [t / 2 for t in range(0, 201)]


@dataclass(frozen=True, slots=True)
class Labelled:
    text: str
    accepted: frozenset[str]  # empty: no entry may be chosen


@dataclass(frozen=True, slots=True)
class Answer:
    entry: str | None  # None: no answer
    score: float
    asked: bool = False  # no entry, but "did you mean" alternatives
    choices: tuple[str, ...] = ()  # the alternatives offered


def load_labelled(path: Path = QUERIES) -> list[Labelled]:
    """Return the labelled queries: text and acceptable entries (none for a negative)."""
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for item in items:
        expect = item["expect"]
        ids = expect if isinstance(expect, list) else [] if expect is None else [expect]
        out.append(Labelled(str(item["q"]), frozenset(ids)))
    return out


# --------------------------------------------------------------------------- the three matchers


class Ours:
    """bot.matching.matcher.Matcher with one of its scorers (blend is what the bot uses)."""

    def __init__(self, knowledge: Knowledge, normalizer: Normalizer, scorer: Scorer) -> None:
        self.name = scorer.value
        self.matcher = Matcher(knowledge, normalizer, scorer=scorer)

    def answer_many(self, texts: Sequence[str]) -> list[Answer]:
        return [
            Answer(
                r.found,
                r.score,
                r.found is None and bool(r.alternatives),
                tuple(a.entry for a in r.alternatives),
            )
            for r in self.matcher.match_many(texts)
        ]


def _patterns(knowledge: Knowledge) -> tuple[list[str], list[str]]:
    """Return every pattern text (raw) and its entry, exactly the texts the Matcher indexes."""
    texts: list[str] = []
    owners: list[str] = []
    for item_id, raw in matchable(knowledge):
        for text in dict.fromkeys(raw):
            texts.append(text)
            owners.append(item_id)
    return texts, owners


class Difflib:
    """difflib.SequenceMatcher.ratio() on normalised text; the best pattern's entry."""

    name = "difflib"

    def __init__(self, knowledge: Knowledge, normalizer: Normalizer) -> None:
        self.normalize = normalizer
        texts, self.owners = _patterns(knowledge)
        self.patterns = [normalizer(t) for t in texts]
        self.threshold = 0.0

    def best_plain(self, text: str) -> tuple[str, float]:
        """ratio() of every pattern."""
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(self.normalize(text))
        best, owner = -1.0, self.owners[0]
        for pattern, entry in zip(self.patterns, self.owners, strict=True):
            matcher.set_seq1(pattern)
            ratio = matcher.ratio()
            if ratio > best:
                best, owner = ratio, entry
        return owner, best * 100

    def best(self, text: str) -> tuple[str, float]:
        """The same answer as best_plain, skipping ratio() where it cannot win."""
        # As difflib.get_close_matches does: seq2 (the query) is analysed once, and the cheap
        # upper bounds skip ratio() where it cannot beat the best so far. Same result.
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(self.normalize(text))
        best, owner = -1.0, self.owners[0]
        for pattern, entry in zip(self.patterns, self.owners, strict=True):
            matcher.set_seq1(pattern)
            if (
                matcher.real_quick_ratio() > best
                and matcher.quick_ratio() > best
                and (ratio := matcher.ratio()) > best
            ):
                best, owner = ratio, entry
        return owner, best * 100

    def answer(self, text: str) -> Answer:
        entry, score = self.best(text)
        return Answer(entry if score >= self.threshold else None, score)


class WRatio:
    """rapidfuzz fuzz.WRatio on raw text; the best pattern's entry."""

    name = "wratio"

    def __init__(self, knowledge: Knowledge, normalizer: Normalizer) -> None:
        self.patterns, self.owners = _patterns(knowledge)
        self.threshold = 0.0

    def best(self, text: str) -> tuple[str, float]:
        found = process.extractOne(text, self.patterns, scorer=fuzz.WRatio)
        if found is None:
            return self.owners[0], 0.0
        _, score, index = found
        return self.owners[index], float(score)

    def answer(self, text: str) -> Answer:
        entry, score = self.best(text)
        return Answer(entry if score >= self.threshold else None, score)


# --------------------------------------------------------------------------- accuracy


def tally(labelled: Sequence[Labelled], answers: Sequence[Answer]) -> dict[str, Any]:
    """Count right, wrong, asked and missed answers; accuracy = right answers / all queries."""
    counts = dict.fromkeys(
        [
            "positives",
            "matched",
            "wrong",
            "asked",
            "asked_right",
            "missed",
            "negatives",
            "rejected",
            "rejected_asked",
            "taken",
        ],
        0,
    )
    for item, answer in zip(labelled, answers, strict=True):
        if item.accepted:
            counts["positives"] += 1
            if answer.entry in item.accepted:
                counts["matched"] += 1
            elif answer.entry is not None:
                counts["wrong"] += 1
            elif answer.asked:
                counts["asked"] += 1
                counts["asked_right"] += int(bool(item.accepted & set(answer.choices)))
            else:
                counts["missed"] += 1
        else:
            counts["negatives"] += 1
            if answer.entry is None:
                counts["rejected"] += 1
                counts["rejected_asked"] += int(answer.asked)
            else:
                counts["taken"] += 1
    right = counts["matched"] + counts["rejected"]
    return {
        **counts,
        "positive_accuracy": round(counts["matched"] / max(counts["positives"], 1), 4),
        "recognised_or_asked": round(
            (counts["matched"] + counts["asked_right"]) / max(counts["positives"], 1), 4
        ),
        "negative_accuracy": round(counts["rejected"] / max(counts["negatives"], 1), 4),
        "accuracy": round(right / max(len(labelled), 1), 4),
    }


def best_threshold(labelled: Sequence[Labelled], best: Sequence[tuple[str, float]]) -> float:
    """Return the threshold with the highest accuracy (the middle of the best range)."""

    def right(threshold: float) -> int:
        return sum(
            (score >= threshold and entry in item.accepted) if item.accepted else score < threshold
            for item, (entry, score) in zip(labelled, best, strict=True)
        )

    scored = [(right(t), t) for t in THRESHOLDS]
    top = max(n for n, _ in scored)
    winners = [t for n, t in scored if n == top]
    return winners[len(winners) // 2]


def accuracy(
    knowledge: Knowledge, normalizer: Normalizer, splits: dict[str, Sequence[Labelled]]
) -> list[dict[str, Any]]:
    """Run every scorer and baseline over each split; return one tally per split and matcher."""
    rows = []
    for scorer in Scorer:
        ours = Ours(knowledge, normalizer, scorer)
        rule = CALIBRATIONS[scorer]
        for split, labelled in splits.items():
            rows.append(
                {
                    "split": split,
                    "matcher": ours.name,
                    "threshold": f"{rule.threshold:g} + margin {rule.margin:g}",
                    **tally(labelled, ours.answer_many([item.text for item in labelled])),
                }
            )
    for baseline in (Difflib(knowledge, normalizer), WRatio(knowledge, normalizer)):
        best = {
            split: [baseline.best(item.text) for item in items] for split, items in splits.items()
        }
        baseline.threshold = best_threshold(splits["tuning"], best["tuning"])
        for split, labelled in splits.items():
            answers = [Answer(e if s >= baseline.threshold else None, s) for e, s in best[split]]
            rows.append(
                {
                    "split": split,
                    "matcher": baseline.name,
                    "threshold": baseline.threshold,
                    **tally(labelled, answers),
                }
            )
    return rows


# --------------------------------------------------------------------------- latency


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def latency(
    name: str,
    knowledge: Knowledge,
    normalizer: Normalizer,
    texts: Sequence[str],
    *,
    scorer: Scorer,
    rounds: int,
    samples: dict[str, int | None],
) -> dict[str, Any]:
    """Time ours (single and batch) and the baselines on one knowledge base."""
    start = time.perf_counter()
    ours = Ours(knowledge, normalizer, scorer)
    build = time.perf_counter() - start
    ours.matcher.match(texts[0])  # warm-up
    gc.collect()
    runs = [[_timed(lambda t=t: ours.matcher.match(t)) for t in texts] for _ in range(rounds)]
    single = [statistics.median(times) for times in zip(*runs, strict=True)]
    batch_runs = [_timed(lambda: ours.matcher.match_many(texts)) for _ in range(max(rounds, 3))]
    row: dict[str, Any] = {
        "kb": name,
        "scorer": scorer.value,
        "entries": len(knowledge.entries),
        "patterns": len(_patterns(knowledge)[0]),
        "build_s": round(build, 3),
        "queries": len(texts),
        "ours_single": summary_ms(single),
        "ours_batch": {
            "batch_size": len(texts),
            "batch_p50_ms": round(percentile(batch_runs, 50) * 1000, 3),
            "per_query_ms": round(percentile(batch_runs, 50) * 1000 / len(texts), 3),
        },
    }
    if scorer is not Scorer.LEXICAL:
        # The encoder's share: what a caller would run in a worker thread (Matcher.embed).
        encode = [
            statistics.median(_timed(lambda t=t: ours.matcher.embed([t])) for _ in range(rounds))
            for t in texts
        ]
        row["embed_single"] = summary_ms(encode)
    # Baselines, interleaved with ours query by query on the same (sampled) queries.
    differ = Difflib(knowledge, normalizer)
    contenders: list[tuple[str, Callable[[str], object]]] = [
        ("wratio", WRatio(knowledge, normalizer).best),
        ("difflib", differ.best_plain),
        ("difflib_pruned", differ.best),
    ]
    for label, call in contenders:
        sample = samples.get(label)
        if sample == 0:
            row[label] = None
            continue
        chosen = _sample(texts, sample)
        theirs: list[float] = []
        mine: list[float] = []
        for text in chosen:
            mine.append(_timed(lambda t=text: ours.matcher.match(t)))
            theirs.append(_timed(lambda t=text, c=call: c(t)))
        row[label] = {**summary_ms(theirs), "sampled": len(chosen) < len(texts)}
        row[f"ours_vs_{label}"] = {
            **summary_ms(mine),
            "speedup_p50": round(percentile(theirs, 50) / max(percentile(mine, 50), 1e-9), 1),
            "speedup_mean": round(sum(theirs) / max(sum(mine), 1e-9), 1),
        }
    return row


def _sample(texts: Sequence[str], size: int | None) -> list[str]:
    if size is None or size >= len(texts):
        return list(texts)
    picks = np.linspace(0, len(texts) - 1, size).round().astype(int)
    return [texts[i] for i in picks]


# --------------------------------------------------------------------------- report


# Run in a fresh interpreter: what the encoder costs a starting bot, in time and memory.
STARTUP_SCRIPT = """
import json, time
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 1e6
from pathlib import Path
from bot.app import load_content
from bot.matching.matcher import Matcher, Scorer
from bot.matching.semantic import default_encoder
content = load_content(Path('knowledge'), Path('locales'))
before = rss()
t0 = time.perf_counter()
default_encoder()
t1 = time.perf_counter()
loaded = rss()
Matcher(content.knowledge, content.normalizer, scorer=Scorer.BLEND)
t2 = time.perf_counter()
t3 = time.perf_counter()
Matcher(content.knowledge, content.normalizer, scorer=Scorer.LEXICAL)
t4 = time.perf_counter()
print(json.dumps({
    "encoder_load_s": t1 - t0, "blend_index_s": t2 - t1, "lexical_index_s": t4 - t3,
    "rss_before_mb": before, "rss_encoder_mb": loaded - before, "rss_after_mb": rss(),
}))
"""


def startup(runs: int) -> dict[str, Any]:
    """Time the encoder's load and the patterns' embedding in fresh interpreters (medians)."""
    found: list[dict[str, float]] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", STARTUP_SCRIPT],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        found.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = {key: round(statistics.median(r[key] for r in found), 3) for key in found[0]}
    # The blend index embeds every pattern and builds the lexical index: the embedding alone.
    result["embed_patterns_s"] = round(result["blend_index_s"] - result["lexical_index_s"], 3)
    return {"runs": runs, **result}


def run(smoke: bool) -> dict[str, Any]:
    content = load_content(ROOT / "knowledge", ROOT / "locales")
    knowledge, normalizer = content.knowledge, content.normalizer
    splits = {name: load_labelled(path) for name, path in SPLITS.items()}
    if smoke:
        splits = {name: items[::10] for name, items in splits.items()}
    texts = [item.text for item in splits["tuning"]]
    started = startup(1 if smoke else 3)
    accuracy_rows = accuracy(knowledge, normalizer, splits)

    # (name, entries, scorer, rounds, queries timed per baseline: None = all, 0 = not run).
    sizes: list[tuple[str, int | None, Scorer, int, dict[str, int | None]]] = (
        [
            ("real", None, Scorer.BLEND, 1, {"wratio": None, "difflib": 5, "difflib_pruned": 5}),
            ("real", None, Scorer.LEXICAL, 1, {"wratio": 0, "difflib": 0, "difflib_pruned": 0}),
            ("generated", 300, Scorer.LEXICAL, 1, {"wratio": 5, "difflib": 2, "difflib_pruned": 3}),
        ]
        if smoke
        else [
            (
                "real",
                None,
                Scorer.BLEND,
                5,
                {"wratio": None, "difflib": None, "difflib_pruned": None},
            ),
            ("real", None, Scorer.LEXICAL, 5, {"wratio": 0, "difflib": 0, "difflib_pruned": 0}),
            (
                "generated",
                1_000,
                Scorer.LEXICAL,
                3,
                {"wratio": None, "difflib": 25, "difflib_pruned": 50},
            ),
            (
                "generated",
                10_000,
                Scorer.LEXICAL,
                3,
                {"wratio": 50, "difflib": 0, "difflib_pruned": 0},
            ),
        ]
    )
    latency_rows = []
    for name, count, scorer, rounds, samples in sizes:
        kb = knowledge if count is None else generated_knowledge(knowledge, count)
        latency_rows.append(
            latency(name, kb, normalizer, texts, scorer=scorer, rounds=rounds, samples=samples)
        )
    return {
        "smoke": smoke,
        "accuracy": accuracy_rows,
        "latency": latency_rows,
        "startup": started,
    }


def goals_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the issue's goals against the measurements."""
    rows = {(row["split"], row["matcher"]): row for row in result["accuracy"]}
    held = rows[("holdout", "blend")]
    latency_rows = result["latency"]
    real = next(r for r in latency_rows if r["kb"] == "real" and r["scorer"] == "blend")
    largest = max(latency_rows, key=lambda r: r["entries"])
    thousand = next((r for r in latency_rows if r["entries"] == 1_000), None)
    started = result["startup"]
    goals = [
        goal(
            "held-out positives recognised directly (%)",
            100 * held["positive_accuracy"],
            90.0,
            at_least=True,
        ),
        goal(
            "held-out positives recognised or asked with the right choice (%)",
            100 * held["recognised_or_asked"],
            98.0,
            at_least=True,
        ),
        goal(
            "held-out negatives rejected (%)", 100 * held["negative_accuracy"], 97.0, at_least=True
        ),
        goal(
            "p99 per message, real KB, with the encoder (ms)", real["ours_single"]["p99_ms"], 15.0
        ),
        goal(
            "encoder load + embedding every pattern at start-up (s)",
            started["encoder_load_s"] + started["embed_patterns_s"],
            2.0,
        ),
        goal(
            f"p99 per query, {largest['entries']:,} entries, lexical (ms)",
            largest["ours_single"]["p99_ms"],
            20.0,
        ),
    ]
    if thousand is not None and thousand.get("ours_vs_difflib"):
        goals.append(
            goal(
                "speed-up over difflib at 1,000 entries (x, p50)",
                thousand["ours_vs_difflib"]["speedup_p50"],
                20.0,
                at_least=True,
            )
        )
    for split in SPLITS:
        for base in ("difflib", "wratio"):
            goals.append(
                goal(
                    f"{split}: blend accuracy minus {base}'s (points)",
                    100 * (rows[(split, "blend")]["accuracy"] - rows[(split, base)]["accuracy"]),
                    0.0,
                    at_least=True,
                )
            )
        goals.append(
            goal(
                f"{split}: blend accuracy minus lexical's (points)",
                100 * (rows[(split, "blend")]["accuracy"] - rows[(split, "lexical")]["accuracy"]),
                0.0,
                at_least=True,
            )
        )
    return goals


def report(result: dict[str, Any]) -> str:
    acc = result["accuracy"]
    sizes = {r["split"]: (r["positives"], r["negatives"]) for r in acc}
    started = result["startup"]
    parts = [
        header("Matching"),
        "Accuracy: "
        + "; ".join(
            f"{split} split {p} positives, {n} negatives" for split, (p, n) in sizes.items()
        )
        + ". Every threshold chosen on the tuning split.\n",
        table(
            [
                "split",
                "matcher",
                "threshold",
                "recognised",
                "recognised or asked right",
                "wrong entry",
                "asked",
                "missed",
                "negatives rejected",
                "(asked)",
                "negatives taken",
                "accuracy",
            ],
            [
                [
                    r["split"],
                    r["matcher"],
                    r["threshold"],
                    f"{r['matched']}/{r['positives']} ({r['positive_accuracy']:.1%})",
                    f"{r['recognised_or_asked']:.1%}",
                    r["wrong"],
                    r["asked"],
                    r["missed"],
                    f"{r['rejected']}/{r['negatives']} ({r['negative_accuracy']:.1%})",
                    r["rejected_asked"],
                    r["taken"],
                    f"{r['accuracy']:.1%}",
                ]
                for r in acc
            ],
        ),
        f"\nStart-up, fresh interpreter (median of {started['runs']}): encoder load "
        f"{started['encoder_load_s']} s (+{started['rss_encoder_mb']:.0f} MB RSS), embedding "
        f"every pattern {started['embed_patterns_s']} s, lexical index "
        f"{started['lexical_index_s']} s; RSS {started['rss_before_mb']:.0f} → "
        f"{started['rss_after_mb']:.0f} MB.\n",
        "\nLatency per message (ms). Baselines interleaved with ours on the same queries; "
        "`n` = queries timed; ×: their p50 / ours on the same queries.\n",
        table(
            [
                "KB",
                "scorer",
                "entries",
                "patterns",
                "build s",
                "ours p50",
                "ours p99",
                "encoder p50/p99",
                "ours batch/query",
                "wratio p50 (n)",
                "difflib p50 (n) ×",
                "difflib pruned p50 (n) ×",
            ],
            [
                [
                    r["kb"],
                    r["scorer"],
                    f"{r['entries']:,}",
                    f"{r['patterns']:,}",
                    r["build_s"],
                    r["ours_single"]["p50_ms"],
                    r["ours_single"]["p99_ms"],
                    (
                        f"{r['embed_single']['p50_ms']:.3g}/{r['embed_single']['p99_ms']:.3g}"
                        if "embed_single" in r
                        else "-"
                    ),
                    r["ours_batch"]["per_query_ms"],
                    _base(r, "wratio"),
                    _base(r, "difflib"),
                    _base(r, "difflib_pruned"),
                ]
                for r in result["latency"]
            ],
        ),
        "\n" + goals_table(result["goals"]),
    ]
    return "\n".join(parts)


def _base(row: dict[str, Any], label: str) -> str:
    summary = row.get(label)
    if not summary:
        return "not run"
    return f"{summary['p50_ms']:.3g} ({summary['n']}) {row[f'ours_vs_{label}']['speedup_p50']}×"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    result = run(args.smoke)
    result["goals"] = goals_of(result)
    print(report(result))
    path = write_result("bench_match", result, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
