"""The chaos scenario at its small size: a real engine and workers under SIGKILL and SIGSTOP,
and every run must end, once, with the right state. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_chaos_quick_loses_doubles_and_breaks_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "chaos", "--quick", "--out", str(out),
         "--keep", str(tmp_path / "kept")],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    r = json.loads(out.read_text())["scenarios"]["chaos"]
    assert r["runs"] == 20 and r["all_ended"]
    assert (r["lost"], r["stuck"], r["doubled"], r["wrong"], r["refused"]) == ([],) * 5
    assert r["side_effects"]["unexplained"] == 0
    assert all(n >= 1 for n in r["faults"].values()), r["faults"]  # each kind landed
    # --keep wrote what the post-mortem reads, and it reads it.
    kept = tmp_path / "kept"
    assert len((kept / "runs.jsonl").read_text().splitlines()) == 20
    assert len((kept / "faults.jsonl").read_text().splitlines()) == sum(r["faults"].values())
    tail = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos_tail", str(kept), "--slowest", "0.2",
         "--workers", "2", "--show", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert tail.returncode == 0, tail.stdout + tail.stderr
    assert "4 slowest of 20 runs" in tail.stdout and "workflow_completed" in tail.stdout
