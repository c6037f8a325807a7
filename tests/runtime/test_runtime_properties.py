"""Property tests over random workflows: replay equals live state (I2), and a crash at every
journal position followed by recovery reaches the uncut run's final state with no node
completion applied twice and no committed node run again (I3, I4)."""

from __future__ import annotations

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether import Runtime
from tether.ir import check
from tether.ir.types import Workflow
from tether.runtime.runnable import check_runnable
from tether.runtime.tools import ToolRegistry
from tether.testing import check_replay, crash_and_recover, journal_length
from tether.testing.strategies import (
    PROPERTY_TOOLS,
    random_workflows,
    reset_property_tools,
    workflow_inputs,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wf=random_workflows(), n=st.integers(-8, 8), snapshot_every=st.sampled_from([0, 1, 3]))
def test_replay_equals_live_state_I2(wf: Workflow, n: int, snapshot_every: int) -> None:
    check(wf)
    check_runnable(wf, ToolRegistry(PROPERTY_TOOLS))
    reset_property_tools()

    async def scenario() -> None:
        async with Runtime("memory://", tools=PROPERTY_TOOLS, snapshot_every=snapshot_every) as rt:
            run = await rt.start(rt.register(wf), {"n": n})
            state = await rt.wait(run.id, timeout=30)
            assert state.status == "completed", state.error
            replayed = await check_replay(rt, run.id)
            assert replayed == state

    anyio.run(scenario)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wf=random_workflows(max_depth=1), n=st.integers(-8, 8))
def test_crash_at_every_journal_position_I3_I4(wf: Workflow, n: int) -> None:
    reset_property_tools()

    async def scenario() -> None:
        total = await journal_length(wf, {"n": n}, tools=PROPERTY_TOOLS)
        reference = await crash_and_recover(wf, {"n": n}, tools=PROPERTY_TOOLS, cut=total)
        assert reference.state.status == "completed"
        for cut in range(total + 1):
            reset_property_tools()  # each life may hit the transient failures again
            report = await crash_and_recover(wf, {"n": n}, tools=PROPERTY_TOOLS, cut=cut)
            assert report.state.status == "completed", (cut, report.state.error)
            assert report.state.data == reference.state.data, cut
            assert report.reran_settled == [], cut

    anyio.run(scenario)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_workflow_inputs_fit_the_schema(data: st.DataObject) -> None:
    wf = data.draw(random_workflows(max_depth=0))
    given_input = data.draw(workflow_inputs(wf))
    assert isinstance(given_input["n"], int)
