"""Code-first workflows run as users write them: steps, gathers, ctx values, failures."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from tests.code_first import flows
from tether import ExecutionFailedError, Runtime, UnsupportedNode
from tether.testing import VirtualClock, check_replay

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _clear_ran() -> None:
    flows.RAN.clear()


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'code.db'}"


async def test_steps_and_a_gather_run_in_order_and_replay(tmp_path: Path) -> None:
    async with Runtime(_url(tmp_path), workflows=[flows.pipeline]) as rt:
        run = await rt.start(flows.pipeline, {"n": 3})
        result = await run.result()
        assert (result["a"], result["b"], result["c"]) == (6, 12, 7)
        assert flows.RAN == ["double(3)", "double(6)", "add(6,1)"]
        await check_replay(rt, run.id)
        kinds = [(e.type, getattr(e.record, "node_id", "")) for e in await rt.journal(run.id)]
    assert kinds == [
        ("execution_started", ""),
        ("node_scheduled", "double#1"),
        ("node_completed", "double#1"),
        ("node_scheduled", "double#2"),
        ("node_scheduled", "add#3"),  # the gather's two calls go out in one turn
        ("node_completed", "double#2"),
        ("node_completed", "add#3"),
        ("node_completed", "@now#4"),
        ("node_completed", "@uuid#5"),
        ("execution_completed", ""),
    ]


async def test_a_step_retries_then_a_handled_failure_is_the_bodys_to_handle(
    tmp_path: Path,
) -> None:
    async with Runtime(_url(tmp_path), workflows=[flows.resilient]) as rt:
        result = await rt.run(flows.resilient, {"fail_times": 2})
    assert result == {"got": "svc ok", "handled": "ValueError: no such order, attempt 1"}
    assert flows.RAN == ["flaky(svc)"] * 3 + ["broken"]


async def test_an_unhandled_step_failure_fails_the_run_naming_the_step(tmp_path: Path) -> None:
    async with Runtime(_url(tmp_path), workflows=[flows.unhandled]) as rt:
        run = await rt.start(flows.unhandled)
        with pytest.raises(ExecutionFailedError, match=r"StepFailed: step broken#1 failed"):
            await run.result()


async def test_a_non_durable_await_fails_the_run_saying_what_to_use(tmp_path: Path) -> None:
    async with Runtime(_url(tmp_path), workflows=[flows.sleeps_wrong]) as rt:
        run = await rt.start(flows.sleeps_wrong)
        with pytest.raises(ExecutionFailedError, match=r"ctx\.sleep"):
            await run.result()


async def test_a_step_outside_a_workflow_is_the_plain_function() -> None:
    assert await flows.double(4) == 8


async def test_a_rate_limited_step_parks_and_a_stuck_one_times_out(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Runtime(_url(tmp_path), workflows=[flows.limits], clock=clock) as rt:
        run = await rt.start(flows.limits)
        for parks in (1, 2):  # each 429 parks the step 30 s, spending no attempt
            with anyio.fail_after(10):
                while flows.RAN.count("throttled(a)") < parks or clock.sleepers == 0:
                    await anyio.sleep(0)
            clock.advance(30)
        result = await run.result(timeout=10)
    assert result["served"] == "served"
    assert "timed out after 1s" in result["timeout"]
    assert flows.RAN.count("throttled(a)") == 3


async def test_cancel_ends_a_waiting_code_first_run(tmp_path: Path) -> None:
    async with Runtime(_url(tmp_path), workflows=[flows.long_wait]) as rt:
        run = await rt.start(flows.long_wait)
        with anyio.fail_after(10):
            while not (await rt.state(run.id)).waits:
                await anyio.sleep(0)
        assert await rt.cancel(run.id, "no longer needed")
        state = await rt.wait(run.id, timeout=10)
        assert state.status == "cancelled"
        await check_replay(rt, run.id)


async def test_an_ir_naming_a_body_the_runtime_lacks_is_refused(tmp_path: Path) -> None:
    ir = msgspec.to_builtins(flows.pipeline.ir())
    async with Runtime(_url(tmp_path)) as rt:
        with pytest.raises(
            UnsupportedNode, match=r"start the engine with `tether dev --modules tests\."
        ):
            rt.register(ir)
        ir["code"] = "os:system"  # an IR never makes the engine import or call anything
        with pytest.raises(UnsupportedNode, match=r"\(os:system\)"):
            rt.register(ir)
