"""Code-first workflows run as users write them: steps, gathers, ctx values, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.code_first import flows
from tether import ExecutionFailedError, Runtime
from tether.testing import check_replay

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
