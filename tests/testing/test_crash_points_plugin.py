"""``@pytest.mark.tether_crash_points`` as a user meets it, in an inner pytest session: a
correct workflow passes at every position, a tool that is not idempotent runs again only when
the crash caught it in flight, and a runtime with a planted fault is caught at the smallest
failing position with the records around it (I1, I2, I3)."""

from __future__ import annotations

import json

import pytest

PLUGIN = ("-p", "tether.testing.pytest_plugin", "-p", "no:cacheprovider")

WORKFLOW = '''
import json
import pytest
from tether import tool
from tether.ir import compile_yaml_text

CALLS = []

@tool
async def add_one(n: int) -> int:
    return n + 1

@tool
async def send_email(n: int) -> str:
    CALLS.append(n)             # a side effect a second run repeats: not idempotent
    return f"sent {n}"

FLOW = compile_yaml_text("""
workflow: {id: flow, version: "1", state_schema: {n: integer, mail: string}}
nodes:
  a:    {type: tool, tool: add_one, output_key: n, next: b}
  b:    {type: tool, tool: add_one, output_key: n, next: mail}
  mail: {type: tool, tool: send_email, output_key: mail, next: c}
  c:    {type: tool, tool: add_one, output_key: n}
""", "flow.yaml")
'''


def test_a_correct_workflow_passes_at_every_position(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_flow=WORKFLOW
        + """
@pytest.mark.tether(tools=[add_one, send_email])
@pytest.mark.tether_crash_points
async def test_flow(tether_runtime):
    run = await tether_runtime.start(FLOW, {"n": 0})
    assert (await run.result())["n"] == 3
"""
    )
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_a_tool_that_is_not_idempotent_runs_again_only_when_caught_in_flight(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_flow=WORKFLOW
        + """
@pytest.mark.tether(tools=[add_one, send_email])
@pytest.mark.tether_crash_points
async def test_flow(tether_runtime):
    CALLS.clear()
    run = await tether_runtime.start(FLOW, {"n": 0})
    assert (await run.result())["mail"] == "sent 2"
    crash = tether_runtime.crash
    with open("positions.jsonl", "a") as log:
        log.write(json.dumps({
            "position": crash.position if crash else None,
            "in_flight": crash.in_flight_at_crash if crash else [],
            "sent": len(CALLS),
        }) + "\\n")
"""
    )
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)
    lines = (pytester.path / "positions.jsonl").read_text().splitlines()
    runs = [json.loads(line) for line in lines]
    assert runs[0]["position"] is None and runs[0]["sent"] == 1  # the uncut run
    assert [r["position"] for r in runs[1:]] == list(range(len(runs) - 1))
    in_flight = [r for r in runs if "flow-1/mail/1" in r["in_flight"]]
    assert in_flight, "no position caught the email in flight"
    for r in runs:
        assert r["sent"] == (2 if r in in_flight else 1), r


PLANTED_FAULT = '''
import msgspec
from tether.runtime import execution

@pytest.fixture
def recovery_reruns_a_committed_step(monkeypatch):
    """The fault: recovery hands the last completed step out again."""
    real = execution.reissued_items

    def reissued_items(s, graph, execution_id, state, at):
        items = real(s, graph, execution_id, state, at)
        done = [n for n, r in state.nodes.items() if r.status == "completed"]
        if done:
            again = msgspec.structs.replace(state.nodes[done[-1]], status="scheduled")
            redo = msgspec.structs.replace(state, nodes={**state.nodes, done[-1]: again})
            items += [i for i in real(s, graph, execution_id, redo, at) if i.node_id == done[-1]]
        return items

    monkeypatch.setattr(execution, "reissued_items", reissued_items)

@pytest.mark.tether(tools=[add_one, send_email])
@pytest.mark.tether_crash_points
async def test_flow(tether_runtime, recovery_reruns_a_committed_step):
    run = await tether_runtime.start(FLOW, {"n": 0})
    await run.result()          # the test's own assertions would not see it: the plugin does
'''


def test_a_runtime_that_reruns_a_committed_step_is_caught_at_the_smallest_position_I3(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_flow=WORKFLOW + PLANTED_FAULT)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    # a/1 completes in the turn that commits positions 2-3; a cut at 4 is the first to
    # recover with it settled, so 4 is the smallest position the fault can show at.
    assert "crash at journal position 4 of 10" in text
    assert "flow-1/a/1 ran again after the crash, though its outcome was committed" in text
    assert "---- crash at position 4: what follows is recovery ----" in text
    assert "in flight at the crash: flow-1/b/1" in text


def test_the_plain_fixture_checks_replay_at_the_end_I2(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_flow=WORKFLOW
        + '''
from tether.runtime import execution

@pytest.fixture
def live_state_drifts(monkeypatch):
    """The fault: a turn's state keeps a value the journal never had."""
    real = execution.ExecutionActor._turn

    async def _turn(self, incoming, settle=None):
        await real(self, incoming, settle)
        self.state = msgspec.structs.replace(self.state, data={**self.state.data, "ghost": 1})

    monkeypatch.setattr(execution.ExecutionActor, "_turn", _turn)

import msgspec

@pytest.mark.tether(tools=[add_one, send_email])
async def test_flow(tether_runtime, live_state_drifts):
    run = await tether_runtime.start(FLOW, {"n": 0})
    await run.result()
'''
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, errors=1)  # the teardown check
    assert "replay differs from live state" in result.stdout.str()
