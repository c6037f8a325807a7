"""Every benchmark runs at a tiny size, so the benchmarks keep working. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "args",
    [
        ["benchmarks.chain", "--runs", "6", "--in-flight", "1,3", "--rounds", "1"],
        ["benchmarks.artifacts", "--runs", "4", "--in-flight", "1,2", "--rounds", "1"],
        ["benchmarks.audit", "--runs", "4", "--in-flight", "1", "--rounds", "1", "--turns", "100"],
        ["benchmarks.limits_group_commit", "--steps", "200", "--producers", "5", "--rounds", "1"],
        ["benchmarks.actor_hop", "--n", "200", "--repeats", "1"],
        ["benchmarks.fleet", "--runs", "4", "--in-flight", "1", "--workers", "1", "--rounds", "1"],
        [
            "benchmarks.idle",
            "--runs",
            "40",
            "--sample",
            "5",
            "--timer-sample",
            "3",
            "--short-timer",
            "1.5",
        ],
        [
            "benchmarks.limits",
            "--rounds",
            "1",
            "--steps",
            "200",
            "--commits",
            "20",
            "--zmq-n",
            "200",
            "--hops",
            "200",
        ],
        [
            "benchmarks.views",
            "--runs",
            "3000",
            "--repeats",
            "1",
            "--lag-runs",
            "4",
            "--lag-in-flight",
            "1,2",
        ],
    ],
    ids=[
        "chain",
        "artifacts",
        "audit",
        "limits_group_commit",
        "actor_hop",
        "fleet",
        "idle",
        "limits",
        "views",
    ],
)
def test_benchmark_runs_and_prints(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "/s" in done.stdout


def test_the_suite_entry_point_writes_every_figure_as_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "chain", "--out", str(out), "--runs", "6",
         "--in-flight", "1,3", "--rounds", "1", "--durability", "full,normal"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] and report["machine"]["sqlite"]
    results = report["scenarios"]["chain"]["results"]
    assert {(r["durability"], r["in_flight"]) for r in results} == {
        ("full", 1),
        ("full", 3),
        ("normal", 1),
        ("normal", 3),
    }
    assert all(r["steps_per_s"] > 0 and r["ratio"] > 0 for r in results)
