"""Property tests over random workflows whose nodes read each other's outputs: the final state
is the one an independent model of the workflow computes, replay equals live state (I2), and
a crash at every journal position followed by recovery reaches that same state with no node
completion applied twice, no committed node run again, and no node started before its turn
committed (I1, I3, I4), on the memory store and on a SQLite file abandoned as by a SIGKILL."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable

import anyio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tether import Runtime
from tether.ir import check
from tether.runtime.runnable import check_runnable
from tether.runtime.tools import ToolRegistry
from tether.runtime.typed_state import checked_input
from tether.testing import check_journal, check_replay, crash_and_recover, journal_length
from tether.testing.strategies import (
    PROPERTY_TOOLS,
    modelled_workflows,
    reset_property_tools,
    workflow_inputs,
)
from tether.testing.workflow_model import ModelledWorkflow

SLOW_OK = [HealthCheck.too_slow]


@settings(max_examples=100, deadline=None, suppress_health_check=SLOW_OK)
@given(model=modelled_workflows(), n=st.integers(-8, 8), snapshot_every=st.sampled_from([0, 1, 3]))
def test_replay_equals_live_state_and_the_model_I2(
    model: ModelledWorkflow, n: int, snapshot_every: int
) -> None:
    wf = model.workflow
    check(wf)
    check_runnable(wf, ToolRegistry(PROPERTY_TOOLS))
    reset_property_tools()

    async def scenario() -> None:
        async with Runtime("memory://", tools=PROPERTY_TOOLS, snapshot_every=snapshot_every) as rt:
            run = await rt.start(rt.register(wf), {"n": n})
            state = await rt.wait(run.id, timeout=30)
            assert state.status == "completed", state.error
            assert state.data == model.expected_data({"n": n})
            replayed = await check_replay(rt, run.id)
            assert replayed == state

    anyio.run(scenario)


def _sweep_every_cut(
    model: ModelledWorkflow, n: int, url_for: Callable[[str], str | None], stats: Counter[str]
) -> None:
    """Cut the run at every journal position; each cut must recover to the model's state."""
    wf = model.workflow
    expected = model.expected_data({"n": n})
    reset_property_tools()

    async def scenario() -> None:
        total = await journal_length(wf, {"n": n}, tools=PROPERTY_TOOLS, url=url_for("length"))
        for cut in range(total + 1):
            reset_property_tools()  # each life may hit the transient failures again
            report = await crash_and_recover(
                wf, {"n": n}, tools=PROPERTY_TOOLS, cut=cut, url=url_for(f"cut{cut}")
            )
            assert report.state.status == "completed", (cut, report.state.error)
            assert report.state.data == expected, cut
            assert report.reran_settled == [], cut
            assert report.unjournaled == [], cut  # I1: nothing ran before its turn committed
            check_journal(report.entries)
            where = "past the end"
            if report.crashed:
                where = "with work in flight" if report.in_flight_at_crash else "between steps"
            event(f"cut landed {where}")
            stats["cuts"] += 1
            stats[where] += 1

    anyio.run(scenario)


def _assert_cuts_landed(stats: Counter[str]) -> None:
    """Most cuts must crash the run mid-way, most of those with a tool running: a harness
    whose cut stopped landing would pass every check above without testing recovery."""
    crashed = stats["with work in flight"] + stats["between steps"]
    assert crashed >= 0.8 * stats["cuts"], stats
    assert stats["with work in flight"] >= 0.5 * crashed, stats


def test_crash_at_every_journal_position_I1_I3_I4() -> None:
    stats: Counter[str] = Counter()

    @settings(max_examples=25, deadline=None, suppress_health_check=SLOW_OK)
    @given(model=modelled_workflows(max_depth=1), n=st.integers(-8, 8))
    def each(model: ModelledWorkflow, n: int) -> None:
        _sweep_every_cut(model, n, lambda name: None, stats)

    each()
    _assert_cuts_landed(stats)


def test_crash_at_every_journal_position_on_sqlite_I1_I3_I4() -> None:
    stats: Counter[str] = Counter()

    @settings(max_examples=6, deadline=None, suppress_health_check=SLOW_OK)
    @given(model=modelled_workflows(max_depth=1), n=st.integers(-8, 8))
    def each(model: ModelledWorkflow, n: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            _sweep_every_cut(model, n, lambda name: f"sqlite:///{tmp}/{name}.db", stats)

    each()
    _assert_cuts_landed(stats)


@settings(max_examples=20, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_workflow_inputs_fit_the_schema_and_run_to_the_model(data: st.DataObject) -> None:
    model = data.draw(modelled_workflows(max_depth=0))
    given_input = data.draw(workflow_inputs(model.workflow))
    # It fits: accepted as it is, required keys there, optional task keys sometimes given.
    assert checked_input(model.workflow, given_input) == given_input
    reset_property_tools()

    async def scenario() -> None:
        async with Runtime("memory://", tools=PROPERTY_TOOLS) as rt:
            run = await rt.start(rt.register(model.workflow), given_input)
            state = await rt.wait(run.id, timeout=30)
            assert state.status == "completed", state.error
            assert state.data == model.expected_data(given_input)

    anyio.run(scenario)
