"""``python -m benchmarks testing`` runs at its smallest size and prints its figures, through
the suite's entry point (which keeps them as JSON). No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_testing_benchmark_runs_and_prints_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "testing", "--nodes", "5", "--agent-examples", "20",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "crash points, 5-node chain on sqlite" in done.stdout
    assert "agent property: 20 examples" in done.stdout
    report = json.loads(out.read_text())["scenarios"]["testing"]
    assert [r["positions"] for r in report["crash_points"]] == [12, 12]
    assert report["agents"]["examples"] == 20
