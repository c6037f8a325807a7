"""benchmarks.peers runs at a tiny size and fails loudly on a broken child. No timing asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import peers

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--runs-seq", "2", "--runs-conc", "4", "--in-flight", "2", "--tether-500-runs", "4"]


def test_peers_runs_and_prints_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers", *TINY, "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "steps/s" in done.stdout
    assert "tether conc / " in done.stdout or "skipping" in done.stdout


def test_a_failing_child_fails_the_driver(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A module that does not exist: the child exits nonzero without a JSON line.
    monkeypatch.setitem(peers.CHILD_MODULE, "tether", "benchmarks.no_such_peer")
    with pytest.raises(SystemExit) as exc:
        peers.main([*TINY, "--rounds", "1", "--systems", "tether"])
    assert exc.value.code == 1
    assert "No module named" in capsys.readouterr().err


def test_result_is_the_last_json_object_line() -> None:
    stdout = 'INFO launched\n{"steps_per_s": 1.0}\n{"other": 2}\nbye\n'
    assert peers.last_json_line(stdout) == {"steps_per_s": 1.0}
    assert peers.last_json_line("no json here\n") is None


def test_weaker_durability_is_labelled() -> None:
    assert "WEAKER" in peers.durability_label({"journal_mode": "wal", "synchronous": 1})
    assert "WEAKER" not in peers.durability_label({"journal_mode": "wal", "synchronous": 2})


def test_a_missing_peer_is_skipped_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(peers.REQUIRES, "dbos", ("no_such_library_for_peers",))
    report = peers.main([*TINY, "--rounds", "1", "--systems", "dbos"])
    assert report["results"] == []
    assert 'skipping dbos: no_such_library_for_peers not importable; pip install -e ".[bench]"' in (
        capsys.readouterr().out
    )
