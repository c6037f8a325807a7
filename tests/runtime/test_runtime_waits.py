"""Durable waits: timers, external events, either, on the injected clock (I1, I2, I3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tether import ExecutionNotFound, ExecutionNotRunning, InvalidInput, Runtime, tool
from tether.ir import WorkflowError, compile_yaml_text
from tether.ir.identity import canonical_ir
from tether.testing import VirtualClock, check_replay

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    """Let the runtime's tasks run until ``check()`` holds (no time passes on a VirtualClock)."""
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0)


@tool
async def bump(n: int) -> int:
    return n + 1


WAIT = """
workflow: {{id: w, version: "1", start: pause, state_schema: {{n: {{type: integer}}}}}}
nodes:
  pause: {{type: wait, {wait}, next: after}}
  after: {{type: tool, tool: bump, input: {{n: $n}}, output_key: n, next: end}}
"""


def wait_wf(wait: str) -> str:
    return WAIT.format(wait=wait)


async def waiting(rt: Runtime, run_id: str) -> bool:
    return "pause" in (await rt.state(run_id)).waits


async def test_a_timer_wait_resumes_when_the_clock_passes_it(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        run = await rt.start(
            rt.register(compile_yaml_text(wait_wf("duration: 1h"), "w.yaml")), {"n": 1}
        )
        await until(lambda: clock.sleepers > 0)
        assert (await rt.state(run.id)).waits["pause"].fire_at_ms == int(
            clock.now() * 1000
        ) + 3_600_000
        clock.advance(3599)
        assert await waiting(rt, run.id)
        clock.advance(1)
        assert await run.result(timeout=10) == {"n": 2, "pause": {"by": "timer", "payload": None}}
        types = [e.type for e in await rt.journal(run.id)]
        assert types[:4] == ["execution_started", "node_waiting", "timer_fired", "wait_completed"]
        await check_replay(rt, run.id)


async def test_an_event_sent_before_the_wait_is_kept_and_taken_I1(db_url: str) -> None:
    gate = anyio.Event()

    # On the pool: a tool run in its execution's own turn would hold the event behind it,
    # and this one waits for the gate the test opens only after the event is accepted.
    @tool(inline=False)
    async def slow(n: int) -> int:
        await gate.wait()
        return n

    text = """
workflow: {id: e, version: "1", start: first, state_schema: {n: {type: integer}}}
nodes:
  first: {type: tool, tool: slow, input: {n: $n}, output_key: n, next: pause}
  pause: {type: wait, event: payment-cleared, next: end}
"""
    async with Runtime(db_url, tools=[slow]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(text, "e.yaml")), {"n": 1})
        assert await rt.send_event(run.id, "payment-cleared", {"amount": 50_000}, event_id="ev-1")
        assert not await rt.send_event(run.id, "payment-cleared", {"amount": 1}, event_id="ev-1")
        assert (await rt.state(run.id)).inbox == {"payment-cleared": ({"amount": 50_000},)}
        gate.set()
        result = await run.result(timeout=10)
        assert result["amount"] == 50_000  # the payload is merged into state
        assert result["pause"] == {"by": "event", "payload": {"amount": 50_000}}
        state = await check_replay(rt, run.id)
        assert state.inbox == {}
        assert [e.type for e in await rt.journal(run.id)].count("event_received") == 1


async def test_either_event_wins_and_the_timer_is_recorded_as_cancelled(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        wf = rt.register(compile_yaml_text(wait_wf("duration: 1h, event: go"), "w.yaml"))
        run = await rt.start(wf, {"n": 1})
        await until(lambda: clock.sleepers > 0)
        await rt.send_event(run.id, "go", {"n": 10})
        assert await run.result(timeout=10) == {
            "n": 11,
            "pause": {"by": "event", "payload": {"n": 10}},
        }
        completed = [e.record for e in await rt.journal(run.id) if e.type == "wait_completed"]
        assert completed[0].cancelled == "timer"  # type: ignore[union-attr]
        clock.advance(7200)  # the disarmed timer fires into a finished run: nothing happens
        assert [e.type for e in await rt.journal(run.id)].count("timer_fired") == 0


async def test_either_timer_wins_and_the_event_is_recorded_as_cancelled(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        wf = rt.register(compile_yaml_text(wait_wf("duration: 1h, event: go"), "w.yaml"))
        run = await rt.start(wf, {"n": 1})
        await until(lambda: clock.sleepers > 0)
        clock.advance(3600)
        assert (await run.result(timeout=10))["pause"]["by"] == "timer"
        completed = [e.record for e in await rt.journal(run.id) if e.type == "wait_completed"]
        assert completed[0].cancelled == "event"  # type: ignore[union-attr]


async def test_a_day_of_timers_runs_in_no_time(db_url: str) -> None:
    clock = VirtualClock()
    text = """
workflow: {id: day, version: "1", start: hourly, state_schema: {n: {type: integer}}}
nodes:
  hourly: {type: wait, duration: 1h, next: tick}
  tick: {type: tool, tool: bump, input: {n: $n}, output_key: n, next: more}
  more:
    type: branch
    cases: [{when: "n < 24", to: hourly}]
    default: end
"""
    started = clock.now()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(text, "day.yaml")), {"n": 0})
        for _ in range(24):
            await until(lambda: clock.sleepers > 0)
            clock.advance_to_next()
        result = await run.result(timeout=10)
        assert result["n"] == 24
        assert clock.now() - started == 24 * 3600
        types = [e.type for e in await rt.journal(run.id)]
        assert types.count("timer_fired") == 24
        await check_replay(rt, run.id)


async def test_a_restart_rearms_exactly_the_unfired_timers_I3(tmp_path: Path) -> None:
    clock = VirtualClock()
    url = f"sqlite:///{tmp_path / 'w.db'}"
    async with Runtime(url, tools=[bump], clock=clock) as rt:
        wf = rt.register(compile_yaml_text(wait_wf("duration: 1h"), "w.yaml"))
        run = await rt.start(wf, {"n": 1})
        await until(lambda: clock.sleepers > 0)
    clock.advance(7200)  # the engine was down when the timer came due
    async with Runtime(url, tools=[bump], clock=clock) as rt:
        assert await rt.handle(run.id).result(timeout=10) == {
            "n": 2,
            "pause": {"by": "timer", "payload": None},
        }
        assert [e.type for e in await rt.journal(run.id)].count("timer_fired") == 1


async def test_events_that_cannot_be_taken_are_refused_clearly_I10(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        wf = rt.register(compile_yaml_text(wait_wf("event: go"), "w.yaml"))
        run = await rt.start(wf, {"n": 1})
        with pytest.raises(InvalidInput, match=r"no wait node .* waits for event 'nope'.*'go'"):
            await rt.send_event(run.id, "nope", {})
        with pytest.raises(ExecutionNotFound):
            await rt.send_event("exec_unknown", "go", {})
        await rt.send_event(run.id, "go", {})
        await run.result(timeout=10)
        with pytest.raises(ExecutionNotRunning, match="is completed"):
            await rt.send_event(run.id, "go", {})


async def test_cancel_ends_a_waiting_run_and_its_timer_does_nothing_I3(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        run = await rt.start(
            rt.register(compile_yaml_text(wait_wf("duration: 1h"), "w.yaml")), {"n": 1}
        )
        await until(lambda: clock.sleepers > 0)
        assert await rt.cancel(run.id, reason="superseded")
        clock.advance(3600)
        state = await rt.wait(run.id, timeout=10)
        assert (state.status, state.error) == ("cancelled", "superseded")
        assert "timer_fired" not in [e.type for e in await rt.journal(run.id)]


ESCALATING = """
workflow: {id: esc, version: "1", start: hold, state_schema: {n: {type: integer}}}
nodes:
  hold: {type: wait, event: reviewed, timeout_hours: 8, on_timeout: escalate, next: after}
  after: {type: tool, tool: bump, input: {n: $n}, output_key: n, next: end}
  escalate: {type: tool, tool: bump, input: {n: 100}, output_key: n, next: end}
"""


async def test_a_timed_out_wait_goes_to_its_on_timeout_node_an_event_to_next_I2(
    db_url: str,
) -> None:
    """The jamjet dialect (timeout_hours + on_timeout: <node>): the timer's route is the
    escalation, the event's the usual next; both replay to the live state."""
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        wf = rt.register(compile_yaml_text(ESCALATING, "esc.yaml"))
        timed = await rt.start(wf, {"n": 1})
        answered = await rt.start(wf, {"n": 1})
        await until(lambda: clock.sleepers > 0)
        await rt.send_event(answered.id, "reviewed", {"ok": True})
        assert (await answered.result(timeout=10))["n"] == 2
        clock.advance(8 * 3600)
        assert (await timed.result(timeout=10))["n"] == 101
        for run in (timed, answered):
            await check_replay(rt, run.id)


@pytest.mark.parametrize(
    ("wait", "problem"),
    [
        ("{type: wait, event: e, timeout_hours: 1, duration: 1h, next: end}", "not both"),
        ("{type: wait, event: e, timeout_hours: -1, next: end}", "positive number"),
        ("{type: wait, event: e, on_timeout: nowhere, timeout_hours: 1, next: end}", "nowhere"),
        ("{type: wait, event: e, on_timeout: end, next: end}", "needs a timer"),
    ],
)
async def test_bad_wait_timeouts_are_refused_naming_the_problem(
    db_url: str, wait: str, problem: str
) -> None:
    text = f'workflow: {{id: bad, version: "1"}}\nnodes:\n  hold: {wait}\n'
    with pytest.raises(WorkflowError, match=problem):
        compile_yaml_text(text, "bad.yaml")


def test_a_wait_without_on_timeout_keeps_its_digest_I13() -> None:
    """on_timeout came later: left out of the canonical IR at its default, so a wait
    workflow registered before keeps its identity."""
    wf = compile_yaml_text(wait_wf("duration: 1h"), "w.yaml")
    assert b"on_timeout" not in canonical_ir(wf)


async def test_a_parallel_branchs_on_timeout_route_counts_in_the_block_analysis(
    db_url: str,
) -> None:
    """A wait's on_timeout is a route like its next: one into another branch is refused at
    registration (the node would run once per branch), as an edge there is."""
    text = """
workflow: {id: pb, version: "1", start: fan, state_schema: {n: {type: integer}}}
nodes:
  fan: {type: parallel, branches: [a, b]}
  a: {type: wait, event: e, duration: 1h, on_timeout: b, next: join}
  b: {type: tool, tool: bump, input: {n: 1}, output_key: n, next: join}
  join: {type: join, next: end}
"""
    async with Runtime(db_url, tools=[bump]) as rt:
        with pytest.raises(WorkflowError, match="both reach node 'b'"):
            rt.register(compile_yaml_text(text, "pb.yaml"))
