"""The chaos scenario's extra faults, each at the small size with real processes (a ``tether
dev`` engine, two ``tether worker``s, the usual SIGKILLs and SIGSTOPs): a SIGSTOP of the engine
past the workers' lease TTL; a clock jump on the engine (``benchmarks.chaos_clock``); a reply
lost after the engine committed its request, on the API and on a worker's link
(``benchmarks.chaos_proxy``). Every run must end, once, with the right state, and every
repeated side effect must be a journaled retry. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def chaos(tmp_path: Path, kind: str) -> dict[str, Any]:
    out = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "chaos", "--quick", "--also", kind,
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    r: dict[str, Any] = json.loads(out.read_text())["scenarios"]["chaos"]
    assert r["runs"] == 20 and r["all_ended"], done.stdout
    assert (r["lost"], r["stuck"], r["doubled"], r["wrong"], r["refused"]) == ([],) * 5
    assert r["side_effects"]["unexplained"] == 0, done.stdout
    assert r["faults"][kind] >= 1, r["faults"]  # it landed (the extra kinds land first)
    return r


@pytest.mark.slow
def test_engine_sigstop_past_the_lease_ttl_loses_doubles_and_breaks_nothing(
    tmp_path: Path,
) -> None:
    chaos(tmp_path, "engine_stop")


@pytest.mark.slow
def test_engine_clock_jump_loses_doubles_and_breaks_nothing(tmp_path: Path) -> None:
    r = chaos(tmp_path, "clock_jump")
    assert r["clock_offset_s"] != 0.0  # the engine's clock really moved


@pytest.mark.slow
def test_replies_lost_after_commit_are_resent_and_break_nothing(tmp_path: Path) -> None:
    r = chaos(tmp_path, "reply_lost")
    # A POST /executions reached the engine and its answer was dropped (the driver resent
    # it under the same execution id), and so was the Ack of a worker's result (the worker
    # rejoined holding it unacknowledged and re-sent it; the engine had committed it, so the
    # copy changes nothing): each run still started once and completed once.
    assert r["replies_dropped"] == {"api": 1, "worker": 1}, r["replies_dropped"]
    assert r["results_unacked_at_rejoin"] >= 1
