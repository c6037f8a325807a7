"""benchmarks.zmq_roundtrip runs at a tiny size and prints its figures; no timing asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_zmq_roundtrip_benchmark_runs_and_prints() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.zmq_roundtrip", "--n", "200", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("round trips/s") == 5
