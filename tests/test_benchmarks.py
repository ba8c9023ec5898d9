"""The benchmarks run at their smoke size and write results of the documented shape (no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_match
from bot import ocr
from tests.support.paths import ROOT


def run_benchmark(name: str, out: Path, timeout: float = 120.0) -> dict[str, Any]:
    """Run `python -m benchmarks.<name> --smoke` in its own process; return its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| goal |" in done.stdout  # the printed tables
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert result["benchmark"] == name
    assert result["smoke"] is True
    assert {"date", "nproc", "cpu", "python"} <= set(result["machine"])
    for item in result["goals"]:
        assert set(item) == {"goal", "value", "limit", "met"}
        assert isinstance(item["met"], bool)
    return result


def test_bench_match_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "match.json"
    assert bench_match.main(["--smoke", "--out", str(out)]) == 0
    assert "| tuning | blend |" in capsys.readouterr().out
    result = json.loads(out.read_text(encoding="utf-8"))
    rows = {(row["split"], row["matcher"]): row for row in result["accuracy"]}
    matchers = {"lexical", "semantic", "blend", "difflib", "wratio"}
    assert set(rows) == {(split, m) for split in ("tuning", "holdout") for m in matchers}
    for row in rows.values():
        assert row["matched"] + row["wrong"] + row["asked"] + row["missed"] == row["positives"]
        assert row["asked_right"] <= row["asked"]
        assert row["rejected"] + row["taken"] == row["negatives"]
        assert 0 <= row["positive_accuracy"] <= row["recognised_or_asked"] <= 1
        assert 0 <= row["accuracy"] <= 1
    # A baseline's threshold is chosen on the tuning split and applied to both.
    assert rows[("tuning", "difflib")]["threshold"] == rows[("holdout", "difflib")]["threshold"]
    assert isinstance(rows[("tuning", "difflib")]["threshold"], float)
    sizes = [row["entries"] for row in result["latency"]]
    assert sizes[0] < sizes[-1]  # the real knowledge base, then a generated larger one
    for row in result["latency"]:
        assert {"p50_ms", "p99_ms", "n"} <= set(row["ours_single"])
        assert row["ours_batch"]["per_query_ms"] > 0
        assert ("embed_single" in row) == (row["scorer"] != "lexical")
    blend = next(r for r in result["latency"] if r["scorer"] == "blend")
    assert blend["ours_vs_difflib"]["speedup_p50"] > 0
    started = result["startup"]
    assert started["encoder_load_s"] > 0 and started["rss_encoder_mb"] > 0
    assert started["embed_patterns_s"] == pytest.approx(
        started["blend_index_s"] - started["lexical_index_s"], abs=0.002
    )


@pytest.mark.slow
def test_bench_bot(tmp_path: Path) -> None:
    result = run_benchmark("bench_bot", tmp_path / "bot.json")
    assert {run["kind"] for run in result["runs"]} == {
        "ours",
        "bare",
        "bare_aiohttp",
        "bare_defaults",
        "aiogram",
    }
    for run in result["runs"]:
        assert run["exit_code"] == 0
        for phase in ("paste", "tap"):
            assert run[phase]["replied"] == run[phase]["updates"] == result["users"]
            assert {"p50_ms", "p99_ms"} <= set(run[phase]["latency"])
        assert run["tap"]["answer_latency"]["n"] == result["users"]
    assert set(result["summary"]["ratio"]) == {"paste", "tap"}
    assert set(result["summary"]["ratio_aiogram"]) == {"paste", "tap"}


@pytest.mark.slow
def test_bench_bot_cluster(tmp_path: Path, pg_server: object) -> None:
    out = tmp_path / "cluster.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_bot", "--cluster", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert [run["instances"] for run in result["runs"]] == [1, 2]
    for run in result["runs"]:
        for phase in ("paste", "tap"):
            assert run[phase]["replied"] == run[phase]["updates"] == result["users"]
            assert run[phase]["db_cpu_s"] >= 0  # PostgreSQL's own processes (0 at smoke size)
    assert set(result["summary"]["ratio"]) == {"paste", "tap"}
    assert set(result["summary"]["ceiling"]) == {"paste", "tap"}


@pytest.mark.slow
def test_bench_footprint(tmp_path: Path) -> None:
    result = run_benchmark("bench_footprint", tmp_path / "footprint.json")
    assert result["startup"]["median_s"] > 0
    steps = result["startup"]["steps"]
    assert steps[0]["step"] == "interpreter"
    assert all(s["s"] >= 0 and s["total_rss_mb"] > 0 for s in steps)
    users = result["growth_users"]
    assert [row["users"] for row in users] == sorted(row["users"] for row in users)
    assert users[-1]["users"] > 0 and users[-1]["bytes_per_user"] > 0
    for row in [*users, *result["growth_kb"]]:
        assert row["exit_code"] == 0
        assert row["peak_rss_mb"] >= row["rss_idle_mb"] > 0
        assert row["rss_mb"] >= row["pss_mb"] >= row["uss_mb"] > 0
        groups = row["mappings"]
        assert abs(sum(g["rss_mb"] for g in groups.values()) - row["rss_mb"]) < 2


@pytest.mark.slow
def test_bench_loop(tmp_path: Path) -> None:
    result = run_benchmark("bench_loop", tmp_path / "loop.json")
    assert result["exit_code"] == 0
    assert [r["pastes"] for r in result["rounds"]] == [10]
    for r in result["rounds"]:
        assert r["periods"] and r["lag_max_ms"] >= r["lag_p99_ms"] >= 0
    assert result["lag_p99_ms_worst"] >= result["lag_p99_ms_median"]


@pytest.mark.slow
@pytest.mark.skipif(not ocr.available(), reason="Tesseract (jpn+eng) is not installed")
def test_bench_ocr(tmp_path: Path) -> None:
    result = run_benchmark("bench_ocr", tmp_path / "ocr.json")
    assert result["accuracy"]["images"] == result["images"] > 0
    for run in ("baseline", "during_ocr"):
        assert {"p50_ms", "p99_ms"} <= set(result["concurrency"][run])
    e2e = result["end_to_end"]
    assert e2e["screenshots"] > 0
    assert e2e["baseline"]["n"] == e2e["during_pictures"]["n"] > 0


def test_bench_store_compares_the_backends(tmp_path: Path, pg_url: str) -> None:
    from benchmarks import bench_store

    out = tmp_path / "store.json"
    assert (
        bench_store.main(["--smoke", "--tasks", "5", "--database-url", pg_url, "--out", str(out)])
        == 0
    )
    result = json.loads(out.read_text(encoding="utf-8"))
    rows = {row["backend"]: row for row in result["rows"]}
    assert set(rows) == {"memory", "sqlite", "postgres", "postgres+lock"}
    for row in rows.values():
        assert row["saves"] == 100 and row["per_second"] > 0
