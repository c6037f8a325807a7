"""benchmarks.recovery at a tiny size: every system is killed mid-run and recovers.

No timing is asserted; the driver itself exits nonzero if Tether loses a run or re-runs a
persisted step. The driver skips a peer library that is not installed; this test does not:
the peers come with the dev extras, and a smoke test that passes on a skip checks nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import recovery

ROOT = Path(__file__).resolve().parents[1]


def test_recovery_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "recovery.json"
    # 6 runs of 3 steps of 200 ms, killed once 9 steps have run: every run is mid-way.
    args = ["--runs", "6", "--steps", "3", "--step-ms", "200", "--kill-at-steps", "9"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.recovery", *args, "--rounds", "1", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restart->done" in done.stdout
    report = json.loads(out.read_text())
    assert report["scenario"] == "recovery"
    by_system = {r["system"]: r for r in report["results"]}
    assert set(by_system) == set(recovery.SYSTEMS)
    for system, r in by_system.items():
        assert "skipped" not in r, f"{system} was skipped: {r['skipped']}"
        # Ran to the end; what a peer loses or re-runs is its figure, not a test failure.
        assert r["failed_rounds"] == 0, f"{system}: {r['rounds']}"
    tether = by_system["tether"]
    assert tether["unfinished_at_kill"] > 0  # the kill landed mid-run: recovery had work to do
    assert (tether["runs_lost"], tether["persisted_re_executed"]) == (0, 0)
    assert tether["restart_to_done_s"] > 0
