"""Durable waits across a real SIGKILL of the engine process (I1, I3).

A child process (approval_child.py) runs an embedded Runtime on a SQLite file. The parent waits
for the line it prints once the run is parked (paused at a human approval, or waiting on a
1-second timer), kills it with SIGKILL, and starts a second child on the same file that sends
the approval (or only waits for the overdue timer) and prints the journal. Nothing waits a
fixed time: the parent waits for printed lines, process exits and the wall clock passing the
timer's own ``fire_at_ms``. The child killed with a pending timer runs on a clock that stands
still, so the kill comes before the timer is due however slowly the machine runs.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from approval_child import APPROVAL_ID, TIMER_ID

from tether import Runtime
from tether.runtime.records import ApprovalReceived, NodeWaiting, TimerFired, WaitCompleted
from tether.testing import check_journal

HERE = Path(__file__).resolve().parent
CHILD = HERE / "approval_child.py"
DEADLINE = 60.0  # seconds: generous for a loaded CI machine; normally a run takes ~1 s


class Child:
    """A child process whose stdout lines are read by a thread, for waits with a deadline."""

    def __init__(self, mode: str, db: Path, effects: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), mode, str(db), str(effects)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # end of output

    def next_line(self, timeout: float = DEADLINE) -> str:
        """The next line the child prints (fails on exit or after ``timeout`` seconds)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the child in {timeout}s; saw {self.seen}") from None
        if line is None:
            raise AssertionError(f"the child exited ({self.proc.wait()}): {self.stderr()}")
        self.seen.append(line)
        return line

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def sigkill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=DEADLINE) == -signal.SIGKILL

    def finish(self) -> dict[str, Any]:
        """The JSON report a reporting child prints before it exits 0."""
        report: dict[str, Any] = json.loads(self.next_line())
        assert self.proc.wait(timeout=DEADLINE) == 0, self.stderr()
        return report

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)


def effects_by_node(path: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in path.read_text().splitlines())


@pytest.mark.slow
def test_sigkill_while_paused_then_approve_in_a_new_process_I1_I3(tmp_path: Path) -> None:
    db, effects = tmp_path / "runtime.db", tmp_path / "effects.log"
    first = Child("start", db, effects)
    try:
        assert first.next_line() == "paused"
        first.sigkill()
    finally:
        first.close()
    assert effects_by_node(effects) == Counter({"prepare": 1})

    second = Child("approve", db, effects)
    try:
        report = second.finish()
    finally:
        second.close()

    assert report["status"] == "completed"
    types = report["types"]
    assert types.count("approval_received") == 1
    assert types.count("node_waiting") == 1  # the wait was not started again on recovery
    assert types[-1] == "execution_completed"
    [decision] = [r for r in report["records"] if r["type"] == "approval_received"]
    assert (decision["node_id"], decision["decision"], decision["user_id"]) == (
        "review",
        "approved",
        "alice@example.com",
    )
    assert report["data"]["review"]["comment"] == "after kill"
    # The step before the approval ran once (in the killed process), the one after it once
    # (in the new one); each was completed in the journal exactly once.
    pids = {line.split()[0]: line.split()[1] for line in effects.read_text().splitlines()}
    assert effects_by_node(effects) == Counter({"prepare": 1, "release": 1})
    assert pids["release"] == str(report["pid"]) != pids["prepare"]
    completed = Counter(
        r["node_id"] for r in report["records"] if r["type"] == "node_completed" and r["dispatch"]
    )
    assert completed == Counter({"prepare": 1, "release": 1})
    assert anyio.run(journal_types, db, APPROVAL_ID) == types


@pytest.mark.slow
def test_sigkill_while_a_timer_is_pending_fires_it_once_on_restart_I1_I3(tmp_path: Path) -> None:
    db, effects = tmp_path / "runtime.db", tmp_path / "effects.log"
    first = Child("timer", db, effects)
    try:
        word, fire_at = first.next_line().split()
        assert word == "waiting"
        first.sigkill()  # its clock stands still: the timer is pending, whenever this lands
    finally:
        first.close()
    fire_at_ms = int(fire_at)
    assert effects_by_node(effects) == Counter({"prepare": 1})

    # The engine stays down until the timer's time has passed (a condition on the wall clock,
    # polled with a deadline).
    deadline = time.monotonic() + DEADLINE
    while time.time() * 1000 <= fire_at_ms:
        assert time.monotonic() < deadline
        time.sleep(0.01)

    second = Child("resume", db, effects)
    try:
        report = second.finish()
    finally:
        second.close()

    assert report["status"] == "completed"
    types = report["types"]
    assert types.count("timer_fired") == 1
    assert types.count("node_waiting") == 1
    [fired] = [r for r in report["records"] if r["type"] == "timer_fired"]
    assert fired["node_id"] == "pause" and fired["at_ms"] >= fire_at_ms
    [done] = [r for r in report["records"] if r["type"] == "wait_completed"]
    assert (done["node_id"], done["by"]) == ("pause", "timer")
    assert effects_by_node(effects) == Counter({"prepare": 1, "release": 1})
    assert anyio.run(journal_types, db, TIMER_ID) == types


@pytest.mark.slow
def test_sigkill_then_an_immediate_restart_fires_the_timer_once_I3(tmp_path: Path) -> None:
    """The new process starts at once (usually before the timer's time): it arms the timer
    again from the journal and fires it once, when due."""
    db, effects = tmp_path / "runtime.db", tmp_path / "effects.log"
    first = Child("timer", db, effects)
    try:
        fire_at_ms = int(first.next_line().split()[1])
        first.sigkill()
    finally:
        first.close()
    second = Child("resume", db, effects)
    try:
        report = second.finish()
    finally:
        second.close()
    assert report["status"] == "completed"
    [fired] = [r for r in report["records"] if r["type"] == "timer_fired"]
    assert fired["at_ms"] >= fire_at_ms
    assert effects_by_node(effects) == Counter({"prepare": 1, "release": 1})
    assert anyio.run(journal_types, db, TIMER_ID) == report["types"]


async def journal_types(db: Path, execution_id: str) -> list[str]:
    """Open the file in this process (a third life): the finished run is as the child left
    it, its journal keeps its rules, and nothing fires or runs again."""
    async with Runtime(f"sqlite:///{db}") as rt:
        entries = await rt.journal(execution_id)
        check_journal(entries)
        state = await rt.state(execution_id)
        assert state.status == (await rt.get_execution(execution_id)).status == "completed"
        assert state.waits == {}
        assert await rt.list_executions(status="paused") == []
        assert await rt.pending_approvals() == []
        waiting = [e.record for e in entries if isinstance(e.record, NodeWaiting)]
        fired = [e.record for e in entries if isinstance(e.record, TimerFired)]
        ended = [e for e in entries if isinstance(e.record, WaitCompleted | ApprovalReceived)]
        assert len(waiting) == 1 and len(ended) == 1 and len(fired) <= 1
        return [e.type for e in entries]
