"""benchmarks.scale at a tiny size: 1 and 2 shared engines on one Postgres schema and one on
SQLite each finish their chains, and the table and the verdict are printed. No timing is
asserted. Skipped without a Postgres server (see postgres_schemas.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scale_benchmark_runs_every_engine_count_and_says_what_bounds_it(
    postgres_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "scale", "--url", postgres_server, "--engines",
         "1,2", "--runs", "6", "--in-flight", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())["scenarios"]["scale"]
    assert [r["engines"] for r in figures["postgres"]] == [1, 2]
    assert [r["steps"] for r in figures["postgres"]] == [60, 120]  # every chain finished
    assert figures["sqlite"]["steps"] == 60
    assert "postgres x2 engines" in done.stdout and figures["verdict"] in done.stdout
