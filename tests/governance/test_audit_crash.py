"""SIGKILL an engine that is signing its audit chain mid-run: after recovery every chain
verifies with no gap, and a recovering engine's signer signs through each end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_crash_child import step

from tether import Runtime
from tether.governance import engine_signer, init_keys, load_keyring, verify_all_stored
from tether.persistence import SqliteStore
from tether.runtime.internals import runtime_internals

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHILD = Path(__file__).with_name("audit_crash_child.py")
RUNS = 12


def _wait_for_lines(path: Path, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.01)  # polling a file another process writes, with a deadline
    raise AssertionError(f"the engine never wrote {n} lines to {path}")


async def test_after_a_sigkill_every_chain_verifies_with_no_gap(tmp_path: Path) -> None:
    db, keys, log = tmp_path / "t.db", tmp_path / "keys", tmp_path / "effects.log"
    init_keys(keys)
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(keys), str(log), str(RUNS)],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert proc.stdout is not None
    ids = [proc.stdout.readline().strip() for _ in range(RUNS)]
    assert proc.stdout.readline().strip() == "started"
    _wait_for_lines(log, RUNS * 2)  # mid-run: some steps done, most not
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(log.read_text().splitlines()) < RUNS * 5, "killed too late to be mid-run"

    async with Runtime(f"sqlite:///{db}", tools=[step]) as rt:
        services = runtime_internals(rt).services
        signer = engine_signer(services.store, services.clock, keys, interval_s=0.02)
        assert signer is not None
        async with signer:
            for eid in ids:
                state = await rt.wait(eid, timeout=60)
                assert state.status == "completed"
    async with SqliteStore(db, readonly=True) as store:
        verdicts = await verify_all_stored(store, load_keyring(keys))
    assert {v.execution_id for v in verdicts} == set(ids)
    for v in verdicts:
        assert v.ok, v.describe()
        assert v.chained_from == 1 and v.rows == v.head_seq  # contiguous, every row linked
        assert v.signed_through == v.head_seq, v.describe()  # the end is signed
