"""Matching: accuracy on the labelled set and latency per query, beside two baselines.

    python -m benchmarks.bench_match [--smoke] [--out FILE]

Accuracy on tests/data/queries.yaml for our matcher (bot.matching.matcher.Matcher) and, in the same
run over the same patterns (every entry's title, message and patterns in both languages):

* difflib: difflib.SequenceMatcher.ratio() on normalised text (bot.matching.normalize), best
  pattern's entry, accepted from a threshold. Timed twice: plainly (ratio() of every pattern, the
  baseline of the goal) and as difflib.get_close_matches does it (ratio() only where the cheap
  upper bounds real_quick_ratio() and quick_ratio() could beat the best so far: the same
  answers, far fewer ratio() calls);
* wratio: rapidfuzz fuzz.WRatio on the raw texts (process.extractOne), same rule.

A baseline has no margin and no "did you mean": it answers its best entry from its threshold
on, else nothing. Its threshold is the one (0-100, steps of 0.5) that gives it the highest
accuracy on this very labelled set, the middle of the best range: the most favourable choice
for it, and the same set on which our THRESHOLD and MARGIN were chosen (bot/matcher.py).

Latency: for the real knowledge base and generated ones of 1,000 and 10,000 entries
(benchmarks/synthetic.py), each labelled query alone (`match`; a query's time is the median of
a few rounds, so that another process stealing the CPU for a moment does not count; p50 and
p99 are across the queries) and all of them at once (`match_many`, per query). The baselines
are timed on the same queries, interleaved with ours query by query so that a busy machine
slows both alike; the slow ones on a bounded, evenly spaced sample (the `n` in the table).
"""

from __future__ import annotations

import argparse
import difflib
import gc
import statistics
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
from bot.content.languages import LANGUAGES
from bot.matching.matcher import Matcher
from bot.matching.normalize import Normalizer

QUERIES = ROOT / "tests" / "data" / "queries.yaml"
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
    """bot.matching.matcher.Matcher, as the bot builds it."""

    name = "ours"

    def __init__(self, knowledge: Knowledge, normalizer: Normalizer) -> None:
        self.matcher = Matcher(knowledge, normalizer)

    def answer(self, text: str) -> Answer:
        return self.answer_many([text])[0]

    def answer_many(self, texts: Sequence[str]) -> list[Answer]:
        return [
            Answer(r.entry, r.score, r.entry is None and bool(r.alternatives))
            for r in self.matcher.match_many(texts)
        ]


def _patterns(knowledge: Knowledge) -> tuple[list[str], list[str]]:
    """Return every pattern text (raw) and its entry, exactly the texts the Matcher indexes."""
    texts: list[str] = []
    owners: list[str] = []
    for entry in knowledge.entries.values():
        for text in dict.fromkeys(t for lang in LANGUAGES.codes for t in entry.all_patterns(lang)):
            texts.append(text)
            owners.append(entry.id)
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
    knowledge: Knowledge, normalizer: Normalizer, labelled: Sequence[Labelled]
) -> list[dict[str, Any]]:
    """Run the three matchers over the labelled set; return one tally each."""
    texts = [item.text for item in labelled]
    rows = []
    ours = Ours(knowledge, normalizer)
    rows.append(
        {
            "matcher": "ours",
            "threshold": "THRESHOLD 75 + MARGIN 5 (bot/matcher.py)",
            **tally(labelled, ours.answer_many(texts)),
        }
    )
    for baseline in (Difflib(knowledge, normalizer), WRatio(knowledge, normalizer)):
        best = [baseline.best(t) for t in texts]
        baseline.threshold = best_threshold(labelled, best)
        answers = [Answer(e if s >= baseline.threshold else None, s) for e, s in best]
        rows.append(
            {
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
    rounds: int,
    samples: dict[str, int | None],
) -> dict[str, Any]:
    """Time ours (single and batch) and the baselines on one knowledge base."""
    start = time.perf_counter()
    ours = Ours(knowledge, normalizer)
    build = time.perf_counter() - start
    ours.answer(texts[0])  # warm-up
    gc.collect()
    runs = [[_timed(lambda t=t: ours.matcher.match(t)) for t in texts] for _ in range(rounds)]
    single = [statistics.median(times) for times in zip(*runs, strict=True)]
    batch_runs = [_timed(lambda: ours.matcher.match_many(texts)) for _ in range(max(rounds, 3))]
    row: dict[str, Any] = {
        "kb": name,
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


def run(smoke: bool) -> dict[str, Any]:
    content = load_content(ROOT / "knowledge", ROOT / "locales")
    knowledge, normalizer = content.knowledge, content.normalizer
    labelled = load_labelled()
    if smoke:
        labelled = labelled[::10]
    texts = [item.text for item in labelled]
    accuracy_rows = accuracy(knowledge, normalizer, labelled)

    # (name, entries, rounds, queries timed per baseline: None = all, 0 = not run).
    sizes: list[tuple[str, int | None, int, dict[str, int | None]]] = (
        [
            ("real", None, 1, {"wratio": None, "difflib": 5, "difflib_pruned": 5}),
            ("generated", 300, 1, {"wratio": 5, "difflib": 2, "difflib_pruned": 3}),
        ]
        if smoke
        else [
            ("real", None, 5, {"wratio": None, "difflib": None, "difflib_pruned": None}),
            ("generated", 1_000, 3, {"wratio": None, "difflib": 25, "difflib_pruned": 50}),
            ("generated", 10_000, 3, {"wratio": 50, "difflib": 0, "difflib_pruned": 0}),
        ]
    )
    latency_rows = []
    for name, count, rounds, samples in sizes:
        kb = knowledge if count is None else generated_knowledge(knowledge, count)
        latency_rows.append(latency(name, kb, normalizer, texts, rounds=rounds, samples=samples))
    return {"smoke": smoke, "accuracy": accuracy_rows, "latency": latency_rows}


def goals_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the issue's goals against the measurements."""
    by_name = {row["matcher"]: row for row in result["accuracy"]}
    rows = result["latency"]
    real = rows[0]
    largest = max(rows, key=lambda r: r["entries"])
    thousand = next((r for r in rows if r["entries"] == 1_000), None)
    goals = [
        goal("p99 per query, real KB (ms)", real["ours_single"]["p99_ms"], 2.0),
        goal(
            f"p99 per query, {largest['entries']:,} entries (ms)",
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
    for base in ("difflib", "wratio"):
        goals.append(
            goal(
                f"accuracy minus {base}'s (points)",
                100 * (by_name["ours"]["accuracy"] - by_name[base]["accuracy"]),
                0.0,
                at_least=True,
            )
        )
    return goals


def report(result: dict[str, Any]) -> str:
    acc = result["accuracy"]
    first = acc[0]
    parts = [
        header("Matching"),
        f"Accuracy on tests/data/queries.yaml: {first['positives']} positives, "
        f"{first['negatives']} negatives. Baseline thresholds: the best on this same set.\n",
        table(
            [
                "matcher",
                "threshold",
                "accuracy",
                "positives matched",
                "wrong entry",
                "asked",
                "missed",
                "negatives rejected",
                "(asked)",
                "negatives taken",
            ],
            [
                [
                    r["matcher"],
                    r["threshold"],
                    f"{r['accuracy']:.1%}",
                    f"{r['matched']}/{r['positives']}",
                    r["wrong"],
                    r["asked"],
                    r["missed"],
                    f"{r['rejected']}/{r['negatives']}",
                    r["rejected_asked"],
                    r["taken"],
                ]
                for r in acc
            ],
        ),
        "\nLatency per query (ms). Baselines interleaved with ours on the same queries; "
        "`n` = queries timed; ×: their p50 / ours on the same queries.\n",
        table(
            [
                "KB",
                "entries",
                "patterns",
                "build s",
                "ours p50",
                "ours p99",
                "ours mean",
                "ours batch/query",
                "wratio p50 (n)",
                "difflib p50 (n) ×",
                "difflib pruned p50 (n) ×",
            ],
            [
                [
                    r["kb"],
                    f"{r['entries']:,}",
                    f"{r['patterns']:,}",
                    r["build_s"],
                    r["ours_single"]["p50_ms"],
                    r["ours_single"]["p99_ms"],
                    r["ours_single"]["mean_ms"],
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
