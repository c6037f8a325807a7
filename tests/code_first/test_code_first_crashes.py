"""A code-first run crashed at every journal position recovers with nothing committed run
again and nothing run before its turn committed (I1, I3, I4), and its replay equals its live
state (I2): for generated bodies (steps, gathers, values, timers, retries)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.code_first import flows
from tether.runtime.records import NodeCompleted, NodeScheduled
from tether.testing import crash_and_recover, journal_length

pytestmark = pytest.mark.anyio

OPS = st.one_of(
    st.tuples(st.just("step"), st.integers(0, 50)),
    st.tuples(st.just("gather"), st.lists(st.integers(0, 9), min_size=1, max_size=3)),
    st.tuples(st.just("branches"), st.lists(st.integers(0, 9), min_size=2, max_size=3)),
    st.tuples(st.just("value"), st.none()),
    st.tuples(st.just("sleep"), st.none()),
    st.tuples(st.just("flaky"), st.integers(0, 1)),
)


async def crash_everywhere(ops: list[Any]) -> None:
    data = {"ops": ops}
    flows.RAN.clear()
    total = await journal_length(flows.program, data, tools=[])
    expected = None
    for cut in range(total + 1):
        flows.RAN.clear()  # flaky counts its own calls: each cut starts from none
        report = await crash_and_recover(flows.program, data, tools=[], cut=cut)
        assert report.state.status == "completed", (cut, report.state.error)
        assert report.reran_settled == [], cut
        assert report.unjournaled == [], cut
        assert_no_call_handed_out_after_it_completed(report.entries, cut)
        if expected is None:
            expected = report.state.result
        assert report.state.result == expected, cut


def assert_no_call_handed_out_after_it_completed(entries: list[Any], cut: int) -> None:
    """A completed call's result is replayed, never asked for again (under any dispatch)."""
    completed: set[str] = set()
    for entry in entries:
        record = entry.record
        if isinstance(record, NodeScheduled):
            assert record.node_id not in completed, (cut, entry.seq, record.node_id)
        elif isinstance(record, NodeCompleted):
            completed.add(record.node_id)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(OPS, min_size=1, max_size=4))
async def test_a_crash_at_any_position_loses_nothing_and_repeats_nothing(ops: list[Any]) -> None:
    await crash_everywhere([list(op) for op in ops])


async def test_the_example_body_at_every_position() -> None:
    await crash_everywhere(
        [["step", 1], ["gather", [1, 2, 3]], ["value", None], ["sleep", None], ["flaky", 1]]
    )
