"""benchmarks.peers runs at a tiny size and fails loudly on a broken child. No timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import peers

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--runs-seq", "2", "--runs-conc", "4", "--in-flight", "2", "--tether-500-runs", "4"]


def test_peers_runs_and_prints_figures(tmp_path: Path) -> None:
    # Every peer must run: dbos and langgraph come with the dev extras, so a skipped peer here
    # is a broken install or a broken check, not a reason to pass.
    missing = [
        m
        for system in peers.SYSTEMS
        for m in peers.REQUIRES[system]
        if not peers.module_available(m)
    ]
    assert not missing, f'{missing} not importable; pip install -e ".[dev]"'
    out = tmp_path / "peers.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers", *TINY, "--rounds", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "skipping" not in done.stdout
    assert "steps/s" in done.stdout
    report = json.loads(out.read_text())
    ran = {(r["system"], r["config"]) for r in report["results"]}
    assert ran == {(s, c) for s in peers.SYSTEMS for c in ("seq", "conc")} | {("tether", "conc500")}
    # (The driver itself fails a child that did not persist its steps.)
    assert {r["name"] for r in report["ratios"]} == {
        f"tether {ours} / {peer} {theirs}"
        for ours, theirs in (("seq", "seq"), ("conc", "conc"), ("conc500", "conc"))
        for peer in ("dbos", "langgraph")
    }


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
