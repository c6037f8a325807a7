"""Kill a running workflow with SIGKILL, start again, and watch it finish where it left off.

    python examples/crash_resume.py

A child process starts examples/slow_chain.yaml (five steps of 0.3 s, each appending a line
to a side-effect log) and is killed with SIGKILL after the second step. A new Runtime on the
same SQLite file resumes the execution from its journal: the steps whose completion had been
committed do not run again; the step that was running when the process died runs once more.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
WORKFLOW = HERE / "slow_chain.yaml"
sys.path.insert(0, str(HERE.parent))

from tether import Runtime, tool  # noqa: E402
from tether.testing import check_replay  # noqa: E402


@tool
async def slow_step(step: int, log: str) -> int:
    await anyio.sleep(0.3)
    with open(log, "a") as f:
        f.write(f"{step} {os.getpid()}\n")
    return step


async def child(db: str, log: str) -> None:
    async with Runtime(f"sqlite:///{db}", tools=[slow_step]) as rt:
        run = await rt.start(rt.register_yaml(WORKFLOW), input={"log": log})
        print(run.id, flush=True)
        await run.result()


def wait_for_lines(path: Path, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)
    raise SystemExit(f"the child never wrote {n} lines to {path}")


async def resume(db: str, execution_id: str) -> None:
    async with Runtime(f"sqlite:///{db}", tools=[slow_step]) as rt:
        state = await rt.wait(execution_id, timeout=30)
        await check_replay(rt, execution_id)
        records = [e.type for e in await rt.journal(execution_id)]
    print(f"resumed {execution_id}: {state.status}, {len(records)} records, replay checked")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db, log = Path(tmp) / "demo.db", Path(tmp) / "effects.log"
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(db), str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        execution_id = proc.stdout.readline().strip()
        wait_for_lines(log, 2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"killed pid {proc.pid} with SIGKILL after {len(log.read_text().splitlines())} steps")
        anyio.run(resume, str(db), execution_id)
        runs = Counter(line.split()[0] for line in log.read_text().splitlines())
        for step in sorted(runs):
            extra = " (it was running when the process died)" if runs[step] > 1 else ""
            print(f"  step {step} ran {runs[step]}x{extra}")
        if sorted(runs) != ["1", "2", "3", "4", "5"] or sum(runs.values()) > 6:
            raise SystemExit("unexpected side effects: " + repr(runs))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        anyio.run(child, sys.argv[2], sys.argv[3])
    else:
        main()
