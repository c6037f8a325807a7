"""A code-first run killed with SIGKILL in the middle of a step resumes in a new process:
committed steps are replayed, not run again; the step in flight runs again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from tether import Runtime
from tether.testing import check_replay

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kill_flow import killed  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.mark.slow
async def test_sigkill_mid_step_then_a_new_process_finishes_it(tmp_path: Path) -> None:
    db, log = tmp_path / "runtime.db", tmp_path / "effects.log"
    env = {**os.environ, "TETHER_TEST_BLOCK_AT": "3"}
    child = subprocess.Popen(
        [sys.executable, str(HERE / "kill_child.py"), str(db), str(log)],
        stdout=subprocess.PIPE, text=True, cwd=HERE, env=env,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        execution_id = child.stdout.readline().strip()
        with anyio.fail_after(30):  # another process: its log is all there is to watch
            while "done 2" not in (text := log.read_text() if log.exists() else "") or (
                "start 3" not in text
            ):
                await anyio.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    async with Runtime(f"sqlite:///{db}", workflows=[killed]) as rt:
        state = await rt.wait(execution_id, timeout=30)
        await check_replay(rt, execution_id)
        entries = await rt.journal(execution_id)
    assert state.status == "completed" and state.result == 10
    lines = log.read_text().splitlines()
    done = Counter(line.split()[1] for line in lines if line.startswith("done"))
    started = Counter(line.split()[1] for line in lines if line.startswith("start"))
    assert done == Counter({"1": 1, "2": 1, "3": 1, "4": 1})  # committed steps never re-ran
    assert started["3"] == 2  # the step in flight at the kill ran again
    completed = Counter(
        getattr(e.record, "node_id", "") for e in entries if e.type == "node_completed"
    )
    assert completed == Counter({"logged#1": 1, "logged#2": 1, "logged#3": 1, "logged#4": 1})
