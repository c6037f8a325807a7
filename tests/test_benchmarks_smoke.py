"""Every benchmark runs at a tiny size, so the benchmarks keep working. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "args",
    [
        ["benchmarks.chain", "--runs", "6", "--in-flight", "1,3", "--rounds", "1"],
        ["benchmarks.limits_group_commit", "--steps", "200", "--producers", "5", "--rounds", "1"],
        ["benchmarks.actor_hop", "--n", "200", "--repeats", "1"],
        ["benchmarks.fleet", "--runs", "4", "--in-flight", "1", "--workers", "1", "--rounds", "1"],
    ],
    ids=["chain", "limits_group_commit", "actor_hop", "fleet"],
)
def test_benchmark_runs_and_prints(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "/s" in done.stdout
