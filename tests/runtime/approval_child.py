"""Child process for the SIGKILL tests of durable waits (test_runtime_approval_crash.py).

python approval_child.py start DB EFFECTS    -> runs `prepare`, starts the approval run, waits
                                                until it is paused, prints "paused", then blocks
python approval_child.py approve DB EFFECTS  -> opens the same file, approves, waits for the
                                                result, prints one JSON line, exits 0
python approval_child.py timer DB EFFECTS    -> starts the timer run, waits until its 1 s wait
                                                is journaled, prints "waiting <fire_at_ms>",
                                                then blocks; its clock stands still, so the
                                                timer never comes due in this process
python approval_child.py resume DB EFFECTS   -> opens the same file, waits for the timer run to
                                                finish, prints one JSON line, exits 0

Every tool call appends ``<node> <pid>`` to EFFECTS before it returns: the side effect the
parent counts. Execution ids are fixed, so a start in a later process is a no-op.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import anyio

from tether import Runtime, tool
from tether.clock import Clock, SystemClock
from tether.ir import compile_yaml_text
from tether.testing import VirtualClock

APPROVAL_ID = "exec_approval_crash"
TIMER_ID = "exec_timer_crash"

APPROVAL = """
workflow:
  id: approval-crash
  version: "1"
  start: prepare
  state_schema: {effects: {type: string, required: true}}
nodes:
  prepare: {type: tool, tool: effect, input: {node: prepare, effects: $effects}, next: review}
  review:
    type: human_approval
    description: "Release the payment?"
    next:
      - {to: release, when: "review.decision == 'approved'"}
      - {to: end}
  release: {type: tool, tool: effect, input: {node: release, effects: $effects}, next: end}
"""

TIMER = """
workflow:
  id: timer-crash
  version: "1"
  start: prepare
  state_schema: {effects: {type: string, required: true}}
nodes:
  prepare: {type: tool, tool: effect, input: {node: prepare, effects: $effects}, next: pause}
  pause: {type: wait, duration: 1s, next: release}
  release: {type: tool, tool: effect, input: {node: release, effects: $effects}, next: end}
"""


@tool
async def effect(node: str, effects: str) -> str:
    with open(effects, "a") as f:
        f.write(f"{node} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())
    return f"{node} done"


async def report(rt: Runtime, execution_id: str, timeout: float = 60) -> None:
    state = await rt.wait(execution_id, timeout=timeout)
    entries = await rt.journal(execution_id)
    out: dict[str, Any] = {
        "status": state.status,
        "data": state.data,
        "types": [e.type for e in entries],
        "records": [
            {"type": e.type, **{k: v for k, v in _fields(e.record).items() if k != "payload"}}
            for e in entries
        ],
        "pid": os.getpid(),
    }
    print(json.dumps(out), flush=True)


def _fields(record: object) -> dict[str, Any]:
    names = getattr(record, "__struct_fields__", ())
    return {n: getattr(record, n) for n in names if isinstance(getattr(record, n), str | int)}


async def wait_until_paused(rt: Runtime, execution_id: str, timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while (await rt.get_execution(execution_id)).status != "paused":
            await anyio.sleep(0.01)


def clock_for(mode: str) -> Clock:
    """The real clock, except for the process that is killed while its timer is pending.

    That one's time stands still at its start (a virtual clock nobody advances): its timer
    cannot fire however long the kill takes to come on a loaded machine, so the kill always
    lands while the timer is pending. Its records carry real times all the same.
    """
    return VirtualClock(start=time.time()) if mode == "timer" else SystemClock()


async def main(mode: str, db: str, effects: str) -> None:
    async with Runtime(f"sqlite:///{db}", tools=[effect], clock=clock_for(mode)) as rt:
        if mode == "start":
            wf = rt.register(compile_yaml_text(APPROVAL, "approval.yaml"))
            await rt.start(wf, {"effects": effects}, execution_id=APPROVAL_ID)
            await wait_until_paused(rt, APPROVAL_ID)
            print("paused", flush=True)
            await anyio.sleep_forever()
        elif mode == "approve":
            [pending] = await rt.pending_approvals()
            assert (pending.execution_id, pending.node_id) == (APPROVAL_ID, "review"), pending
            await rt.approve(APPROVAL_ID, "approved", "alice@example.com", comment="after kill")
            await report(rt, APPROVAL_ID)
        elif mode == "timer":
            wf = rt.register(compile_yaml_text(TIMER, "timer.yaml"))
            await rt.start(wf, {"effects": effects}, execution_id=TIMER_ID)
            with anyio.fail_after(60):
                while "pause" not in (state := await rt.state(TIMER_ID)).waits:
                    await anyio.sleep(0.005)
            print(f"waiting {state.waits['pause'].fire_at_ms}", flush=True)
            await anyio.sleep_forever()
        elif mode == "resume":
            await report(rt, TIMER_ID)
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
