"""The common turns' one-pass plan (``tether.runtime.step_plan``: a start, a step, a last
step) agrees with the general planner on every turn it plans: same state, same records, same
rows, and the work item and settles the turn derives are the ones the execution actor takes.

Graphs are drawn (tool and whole-state steps, unconditional and conditional edges, loops,
timer waits, parallel blocks with joins, end nodes, any node as the start, an optional
continue-as-new policy) and each run is driven through the general planner with drawn
outcomes (outputs of every msgpack shape, tuples included, retried and final failures,
arguments that do not bind): at the start and at each outcome both planners are asked, and
where the one-pass plan answers it must be exactly the general one's.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tether.ir.types import (
    END,
    ContinueAsNew,
    Edge,
    EndKind,
    JoinKind,
    Node,
    ParallelKind,
    PythonFnKind,
    RetryPolicy,
    ToolKind,
    WaitKind,
    Workflow,
)
from tether.persistence.contract import Settle
from tether.runtime.graph import Graph
from tether.runtime.planner import PlanContext, plan_turn
from tether.runtime.records import (
    ExecutionCompleted,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    Record,
    TimerFired,
)
from tether.runtime.state import ExecutionState
from tether.runtime.step_plan import plan_step
from tether.runtime.turn_work import turn_settles

NOW = 5_000
UNBINDABLE = "t_unbound"

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=4))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
    ),
    max_leaves=6,
)


def bind(node: Node, data: Any) -> dict[str, Any]:
    """Arguments from state, with a tuple (a list once journaled) and the keys seen."""
    if node.id.startswith(UNBINDABLE):
        raise ValueError(f"node {node.id!r}: input 'x' is missing from state")
    return {"n": len(data), "keys": sorted(data)[:3], "pair": (len(data), node.id)}


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    count = draw(st.integers(1, 6))
    ids = [f"t{i}" for i in range(count)]
    if draw(st.integers(0, 3)) == 0:
        ids[draw(st.integers(0, count - 1))] = f"{UNBINDABLE}{count}"
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    for i, node_id in enumerate(ids):
        if draw(st.booleans()):
            key = draw(st.sampled_from([None, "out"]))
            nodes[node_id] = Node(id=node_id, kind=ToolKind(tool_ref="t"), output_key=key)
        else:  # a whole-state step: its dict output is merged into state
            nodes[node_id] = Node(id=node_id, kind=PythonFnKind(module="m", function="f"))
        target = draw(st.sampled_from([*ids, END]))
        shape = draw(st.sampled_from(["next"] * 5 + ["cond", "wait", "parallel"]))
        if shape == "next":
            edges.append(Edge(from_=node_id, to=target))
        elif shape == "cond":
            other = draw(st.sampled_from([*ids, END]))
            edges += [Edge(from_=node_id, to=target, condition="n > 2"), Edge(node_id, other)]
        elif shape == "wait":
            wait = f"w{i}"
            nodes[wait] = Node(id=wait, kind=WaitKind(duration_secs=1.0))
            edges += [Edge(from_=node_id, to=wait), Edge(from_=wait, to=target)]
        else:  # a parallel block: two of the steps, then a join, then on
            p, j = f"p{i}", f"j{i}"
            a, b = draw(st.sampled_from(ids)), draw(st.sampled_from(ids))
            nodes[p] = Node(id=p, kind=ParallelKind(branches=[a, b] if a != b else [a]))
            nodes[j] = Node(id=j, kind=JoinKind(wait_for=[a, b] if a != b else [a]))
            edges += [Edge(from_=node_id, to=p), Edge(from_=j, to=target)]
    if draw(st.booleans()):  # an end node, sometimes named as the end itself
        done = draw(st.sampled_from(["done", END]))
        nodes[done] = Node(id=done, kind=EndKind())
        edges = [Edge(e.from_, done, e.condition) if e.to == END else e for e in edges]
    policy = RetryPolicy(max_attempts=draw(st.integers(1, 3)), backoff_initial_secs=0.0, jitter=0.0)
    rolls = draw(st.integers(0, 3)) == 0
    roll = ContinueAsNew(max_records=draw(st.integers(4, 30))) if rolls else None
    start = ids[0] if draw(st.booleans()) else draw(st.sampled_from(sorted(nodes)))
    return Workflow(
        workflow_id="w", version="1", start_node=start, nodes=nodes, edges=edges,
        retry_policies={"default": policy}, continue_as_new=roll,
    )  # fmt: skip


outcomes = st.one_of(
    st.tuples(st.just("ok"), values),
    st.tuples(st.just("ok"), st.dictionaries(st.text(max_size=3), values, max_size=3)),
    st.tuples(st.sampled_from(["ok", "ok", "ok", "retryable", "final"]), st.none()),
)


def _outcome(node_id: str, state: ExecutionState, drawn: tuple[str, Any]) -> Record:
    run = state.nodes[node_id]
    if drawn[0] == "ok":
        return NodeCompleted(
            at_ms=NOW, node_id=node_id, dispatch=run.dispatch, attempt=run.attempt,
            output=drawn[1], duration_ms=3,
        )  # fmt: skip
    return NodeFailed(
        at_ms=NOW, node_id=node_id, dispatch=run.dispatch, attempt=run.attempt, error="boom",
        error_type="E", retryable=drawn[0] == "retryable",
    )  # fmt: skip


def _next_record(state: ExecutionState, pick: int, drawn: tuple[str, Any]) -> Record | None:
    """An outcome of one hand-out in flight, else a due timer of one wait, else None."""
    flying = state.in_flight()
    if flying:
        node_id, _ = flying[pick % len(flying)]
        return _outcome(node_id, state, drawn)
    for node_id, wait in state.waits.items():
        return TimerFired(at_ms=NOW, node_id=node_id, dispatch=wait.dispatch)
    return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wf=workflows(), data=st.data())
def test_the_one_pass_plan_is_the_general_plan_wherever_it_answers_I2_I3(
    wf: Workflow, data: st.DataObject
) -> None:
    graph = Graph(wf)
    ctx = PlanContext(now_ms=NOW, rng=random.Random(7), bind=bind)
    given_input = data.draw(st.dictionaries(st.sampled_from(["n", "out", "t0"]), values))
    start = ExecutionStarted(
        at_ms=0, execution_id="e", workflow_id="w", workflow_version="1", input=given_input
    )
    state = _both_plans(ExecutionState(), graph, start, ctx)
    for _ in range(25):
        if state.status != "running":
            break
        record = _next_record(state, data.draw(st.integers(0, 3)), data.draw(outcomes))
        if record is None:
            break
        state = _both_plans(state, graph, record, ctx)


def _both_plans(
    state: ExecutionState, graph: Graph, record: Record, ctx: PlanContext
) -> ExecutionState:
    """Plan ``record``'s turn both ways; where the one-pass plan answers, it must be the
    general one and have one of its shapes. The state after the turn."""
    general = plan_turn(state, graph, record, ctx)
    step = plan_step(state, graph, record, NOW, bind)
    if step is not None:
        event(f"planned in one pass: {type(step[1][-1]).__name__} after {type(record).__name__}")
        assert step == general
        _check_turn_shape(state, step, record)
    return general[0]


SHAPES = [
    [ExecutionStarted, NodeScheduled],
    [NodeCompleted, NodeScheduled],
    [NodeCompleted, ExecutionCompleted],
]


def _check_turn_shape(
    before: ExecutionState, step: tuple[ExecutionState, list[Record], list[Any]], incoming: Record
) -> None:
    """What ExecutionActor._turn takes for a one-pass turn is what the general helpers give:
    the last record's hand-out as the one item (in flight after the turn), else none; the
    outcome's settle alone (no other hand-out superseded or cancelled by the end)."""
    after, records, _ = step
    assert [type(r) for r in records] in SHAPES
    last = records[-1]
    if isinstance(last, NodeScheduled):
        run = after.nodes[last.node_id]
        assert (run.status, run.dispatch) == ("scheduled", last.dispatch)
    else:
        assert after.status == "completed" and not after.in_flight()
    settle = (
        Settle("e/x/1", "completed", 1, at_ms=NOW) if isinstance(incoming, NodeCompleted) else None
    )
    assert turn_settles("e", before, after, records, incoming, settle, NOW) == (
        [settle] if settle is not None else []
    )


def test_every_turn_of_a_plain_chain_is_planned_in_one_pass() -> None:
    ids = [f"t{i}" for i in range(5)]
    nodes = {i: Node(id=i, kind=ToolKind(tool_ref="t")) for i in ids}
    edges = [Edge(a, b) for a, b in zip(ids, [*ids[1:], END], strict=True)]
    graph = Graph(Workflow(workflow_id="w", version="1", start_node="t0", nodes=nodes, edges=edges))
    ctx = PlanContext(now_ms=NOW, rng=random.Random(7), bind=bind)
    start = ExecutionStarted(at_ms=0, execution_id="e", workflow_id="w", workflow_version="1")
    first = plan_step(ExecutionState(), graph, start, NOW, bind)
    assert first is not None and first == plan_turn(ExecutionState(), graph, start, ctx)
    state = first[0]
    one_pass = []
    while state.status == "running":
        record = _next_record(state, 0, ("ok", [1, (2, 3)]))
        assert record is not None
        step = plan_step(state, graph, record, NOW, bind)
        general = plan_turn(state, graph, record, ctx)
        if step is not None:
            assert step == general
            one_pass.append(record.node_id)  # type: ignore[union-attr]
        state = general[0]
    assert state.status == "completed"
    assert one_pass == ids  # the last step's turn, which ends the run, too
