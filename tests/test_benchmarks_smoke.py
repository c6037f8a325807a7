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


def test_step_calls_names_the_functions_a_step_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.step_calls", "--runs", "4,12", "--in-flight", "2",
         "--top", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "calls of Python functions" in done.stdout
    # Every step plans and commits a turn; start-up (run once, at both sizes) cancels out.
    assert "tether/runtime/execution.py" in done.stdout and ":_turn" in done.stdout
    assert "measure_chain" not in done.stdout  # called once at each size


def test_a_steps_calls_are_what_grew_between_the_two_sizes() -> None:
    from benchmarks.step_calls import calls_per_step

    # Start-up calls as many times at both sizes (12 / 60 steps would show as 0.2 a step).
    before = {("a.py", 1, "start"): 12, ("a.py", 2, "step"): 30, ("~", 0, "len"): 60}
    after = {("a.py", 1, "start"): 12, ("a.py", 2, "step"): 90, ("~", 0, "len"): 180}
    assert calls_per_step(before, after, steps=60) == {
        ("a.py", 2, "step"): 1.0,
        ("~", 0, "len"): 2.0,
    }


def test_cachegrinds_summary_gives_instructions_and_l1_misses() -> None:
    from benchmarks.instructions import cache_totals

    summary = (
        "==1== I   refs:      3,924,853,107\n==1== I1  misses:       58,162,986\n"
        "==1== LLi misses:           29,157\n==1== D   refs:      1,788,891,520  (1 rd + 2 wr)\n"
        "==1== D1  misses:       45,320,101  (   38,691,975 rd   +   6,628,126 wr)\n"
    )
    assert cache_totals(summary) == {
        "instructions": 3_924_853_107, "I1 misses": 58_162_986, "D1 misses": 45_320_101,
    }  # fmt: skip
    with pytest.raises(RuntimeError, match="D1 misses"):
        cache_totals(summary.split("==1== D1")[0])
