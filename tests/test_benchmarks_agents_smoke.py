"""``python -m benchmarks agents`` runs at its smallest size and prints its figures, alone and
through the suite's entry point (which keeps them as JSON). No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_agents_benchmark_runs_and_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.agents", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for label in ("direct httpx", "engine 1-call", "engine chain5", "added", "ratio", "target"):
        assert label in done.stdout
    assert "in_flight=1" in done.stdout and "in_flight=50" in done.stdout


def test_the_suite_entry_point_keeps_the_agents_figures_as_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "agents", "--out", str(out), "--calls", "20",
         "--in-flight", "1,3", "--chain", "2", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())["scenarios"]["agents"]
    assert isinstance(report["target_met"], bool)
    assert [r["in_flight"] for r in report["results"]] == [1, 3]
    for level in report["results"]:
        assert level["direct"]["calls_per_s"] > 0 and level["direct"]["p50_ms"] > 0
        for name in ("engine_1", "chain"):
            engine = level[name]
            assert engine["calls_per_s"] > 0 and engine["cpu_us"] > 0
            assert engine["p50_ratio"] > 0 and isinstance(engine["added_p50_ms"], float)
