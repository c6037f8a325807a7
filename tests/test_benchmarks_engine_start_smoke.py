"""The engine-start benchmark runs at a tiny size (one start per journal), so it keeps working.
No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_engine_start_times_both_journals_and_the_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine_start", "--rounds", "1", "--runs", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "this       empty" in done.stdout and "this       unfinished" in done.stdout
    assert "imports" in done.stdout and "tether.cli" in done.stdout
