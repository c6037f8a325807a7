"""The fold's rule for an eval node's verdict: where the run goes from it (I2).

A passing verdict routes on like any node (and clears ``state.__eval_feedback__`` it left).
A failing one goes where ``on_fail`` says: ``fail`` halts the run naming the failing scores;
``retry`` and ``retry_with_feedback`` make the node before the eval ready again (the feedback
one leaves the failing scores' messages in ``state.__eval_feedback__``), counting the
retries in ``ExecutionState.eval_retries`` until ``max_retries`` is spent, then halt; a node
id routes there. Everything is read from the ``node_completed`` record and the IR, so replay
routes exactly as the live run did.

Example (what the fold does with a failing verdict of an eval that retries)::

    state = eval_completed(state, NodeCompleted(..., output={"passed": False, ...}),
                           run, graph, seq)
    state.ready   # ("draft",): the node before the eval runs again
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from tether.ir.eval_spec import FAIL, FEEDBACK, FEEDBACK_KEY, on_fail_mode
from tether.ir.types import EvalKind
from tether.runtime.eval_scores import feedback, summary
from tether.runtime.fold_routes import route_to
from tether.runtime.graph import Graph, RouteError
from tether.runtime.records import NodeCompleted
from tether.runtime.state_types import NodeRun

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState

_replace = msgspec.structs.replace


def eval_completed(
    state: ExecutionState, rec: NodeCompleted, run: NodeRun, graph: Graph, seq: int
) -> ExecutionState:
    node_id = rec.node_id
    node = graph.node(node_id)
    kind = node.kind
    assert isinstance(kind, EvalKind)
    output = rec.output
    data = state.data if node.output_key is None else {**state.data, node.output_key: output}
    done = _replace(
        state, last_seq=seq, nodes={**state.nodes, node_id: _replace(run, status="completed")},
        completions=state.completions + 1, running=state.running - 1,
    )  # fmt: skip
    retries = state.eval_retries
    mode = on_fail_mode(kind.on_fail)
    if isinstance(output, dict) and output.get("passed") is True:
        if mode == FEEDBACK and FEEDBACK_KEY in data:
            data = {k: v for k, v in data.items() if k != FEEDBACK_KEY}
        if node_id in retries:
            retries = {k: v for k, v in retries.items() if k != node_id}
        return _route(done, node_id, None, data, retries, graph)
    if mode == "route":
        return _route(done, node_id, kind.on_fail, data, retries, graph)
    why = f"eval {node_id!r} failed: {summary(output)}"
    if mode == FAIL:
        return _replace(done, data=data, halt=why, halt_node=node_id)
    used = retries.get(node_id, 0)
    target = graph.eval_retry_to.get(node_id)
    if used >= kind.max_retries or target is None:
        why = f"eval {node_id!r} failed after {used} retries: {summary(output)}"
        return _replace(done, data=data, halt=why, halt_node=node_id)
    if mode == FEEDBACK:
        data = {**data, FEEDBACK_KEY: feedback(output)}
    return _route(done, node_id, target, data, {**retries, node_id: used + 1}, graph)


def _route(
    done: ExecutionState,
    node_id: str,
    target: str | None,
    data: dict[str, Any],
    retries: dict[str, int],
    graph: Graph,
) -> ExecutionState:
    """Route to ``target`` (None: the node's own edges, read over the new state)."""
    try:
        nxt = target if target is not None else graph.route(node_id, data)
    except RouteError as exc:
        return _replace(done, data=data, eval_retries=retries, halt=str(exc), halt_node=node_id)
    ready, arrivals, ended = route_to(done, node_id, (nxt,), graph, done.ready)
    return _replace(
        done, data=data, eval_retries=retries, ready=ready, arrivals=arrivals, ended=ended
    )
