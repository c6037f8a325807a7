"""Passivation changes nothing a run records (I2, I9): the same signals, in the same order on
the same clock, against a run that passivates at each wait and one that never does, give the
same answers, the same journal record for record, and the same state; each replays to its
live state."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether import Runtime
from tether.ir import compile_yaml_text
from tether.runtime.state import ExecutionState
from tether.testing import VirtualClock, check_replay

FLOW = """
workflow: {id: steps, version: "1", start: gate, state_schema: {n: {type: integer}}}
nodes:
  gate: {type: wait, event: go, duration: 3h, next: review}
  review:
    type: human_approval
    description: "Go?"
    timeout: 2h
    fallback: cool
    next: cool
  cool: {type: wait, duration: 90m, next: last}
  last: {type: wait, event: done, next: end}
"""
EID = "exec_prop"

Op = tuple[str, Any]
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.tuples(st.sampled_from(["go", "done"]), st.sampled_from([None, "e1", "e2"])),
        ),
        st.tuples(st.just("approve"), st.sampled_from(["approved", "rejected"])),
        st.tuples(st.just("advance"), st.sampled_from([30, 60, 120, 200])),
        st.tuples(st.just("cancel"), st.none()),
        st.tuples(st.just("state"), st.none()),
    ),
    max_size=8,
)


async def quiet(rt: Runtime, clock: VirtualClock) -> None:
    """Let the run take every timer now due (no time passes)."""
    now = int(clock.now() * 1000)
    with anyio.fail_after(10):
        while True:
            state = await rt.state(EID)
            due = [w for w in state.waits.values() if w.fire_at_ms is not None
                   and w.fire_at_ms <= now and not w.fired]  # fmt: skip
            if state.is_terminal or not due:
                return
            await anyio.sleep(0)


async def apply(rt: Runtime, clock: VirtualClock, op: Op) -> object:
    kind, arg = op
    try:
        if kind == "event":
            return await rt.send_event(EID, arg[0], {"k": arg[1]}, event_id=arg[1])
        if kind == "approve":
            return (await rt.approve(EID, arg, "alice@example.com")).last_seq
        if kind == "cancel":
            return await rt.cancel(EID, "enough")
        if kind == "advance":
            clock.advance(arg * 60)
            await quiet(rt, clock)
            return None
        return (await rt.state(EID)).display_status
    except Exception as exc:  # a refusal is part of the answer
        return type(exc).__name__


async def life(db: Path, passivate_after: float | None, ops: list[Op]) -> tuple[Any, ...]:
    clock = VirtualClock()
    async with Runtime(f"sqlite:///{db}", clock=clock, passivate_after=passivate_after) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "steps.yaml"))
        await rt.start(wf, {"n": 0}, execution_id=EID)
        answers = [await apply(rt, clock, op) for op in ops]
        await quiet(rt, clock)
        state = await rt.state(EID)
        replayed = await check_replay(rt, EID)
        assert replayed == state
        passivated = (await rt.get_execution(EID)).passivated
        journal = [msgspec.to_builtins(e.record) for e in await rt.journal(EID)]
    return answers, journal, state, passivated


async def compare(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kept = await life(Path(tmp) / "kept.db", None, ops)
        slept = await life(Path(tmp) / "slept.db", 60.0, ops)
    assert kept[:2] == slept[:2]
    assert isinstance(slept[2], ExecutionState) and kept[2] == slept[2]
    assert not kept[3]  # passivation off: never marked


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops)
def test_passivated_and_live_runs_record_the_same_I2_I9(ops: list[Op]) -> None:
    anyio.run(compare, ops)
