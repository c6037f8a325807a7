"""I1: a message whose turn did not commit has not happened, so nothing follows from it."""

from __future__ import annotations

import pytest
from tools import add_one

from tether.ir import compile_yaml_text
from tether.testing import crash_and_recover

pytestmark = pytest.mark.anyio

CHAIN = """
workflow: {id: chain2, version: "1", state_schema: {n: integer}}
nodes:
  first: {type: tool, tool: add_one, output_key: n, next: second}
  second: {type: tool, tool: add_one, output_key: n}
"""


async def test_work_is_not_dispatched_before_its_turn_commits_I1() -> None:
    wf = compile_yaml_text(CHAIN, "chain2.yaml")
    # Position 2 commits [execution_started, node_scheduled(first)]; the next turn, which
    # settles `first` and schedules `second`, is refused: `second` must not have started.
    report = await crash_and_recover(wf, {"n": 0}, tools=[add_one], cut=2)
    assert report.crashed
    execution = "exec_crash_harness"
    # (the life dies at the cut: no supervisor restart runs `first` again in it)
    assert report.started_before[f"{execution}/first/1"] == 1
    assert report.started_before[f"{execution}/second/1"] == 0
    assert report.in_flight_at_crash == [f"{execution}/first/1"]
    assert report.unjournaled == []
    # After recovery the refused outcome is re-derived: `first` runs again, then `second`.
    assert report.started_after[f"{execution}/first/1"] == 1
    assert report.state.data == {"n": 2}
