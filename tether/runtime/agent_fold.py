"""The fold's rules for an agent node's tool-calling loop (I2, I12).

An agent node is handed out once per call: a model call, then each tool call its answer asked
for, then the next model call, until the model answers without tool calls. Each hand-out is a
``node_scheduled`` record with ``input["call"]`` ``"model"`` or ``"tool"`` and each outcome a
``node_completed`` / ``node_failed``, so the transcript is rebuilt from the journal on replay,
never held only in memory. Between calls the loop (:class:`AgentLoop`) sits in
``ExecutionState.loops`` and the node is ready again; the planner
(:mod:`tether.runtime.agent_plan`) decides its next call.

A tool call that fails for good is told to the model (an error result), not the run's end; a
refused call (``policy_violation``) likewise, and a call a person did not approve (a tool
needing approval waits on ``node_waiting`` / ``approval_received`` first). A budget breach
ends the run ``limit_exceeded`` with the best answer so far under the node's state key.

Example (what the fold does with a model answer that asks for one tool)::

    state = call_completed(state, NodeCompleted(..., output={"text": "", "tool_calls": [
        {"id": "c1", "name": "search", "arguments": {"q": "x"}}]}), run, graph, seq)
    state.loops["work"].pending      # ({"id": "c1", ...},): the next hand-out runs it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from tether.runtime.fold_routes import route_to, without
from tether.runtime.graph import Graph, RouteError
from tether.runtime.records import (
    ApprovalReceived,
    BudgetExceeded,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    PolicyViolation,
)
from tether.runtime.state_types import AgentLoop, NodeRun

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState

_replace = msgspec.structs.replace
_json = msgspec.json.Encoder()

#: ``input["call"]`` of an agent node's hand-outs.
MODEL_CALL = "model"
TOOL_CALL = "tool"


def call_of(run: NodeRun) -> str:
    """Which kind of call a hand-out of an agent node is (``model`` or ``tool``)."""
    call = run.input.get("call") if isinstance(run.input, dict) else None
    return call if isinstance(call, str) else MODEL_CALL


def is_tool_call(graph: Graph, node_id: str, run: NodeRun) -> bool:
    return node_id in graph.agent_ids and call_of(run) == TOOL_CALL


def call_scheduled(state: ExecutionState, rec: NodeScheduled) -> ExecutionState:
    """A model call's messages are the loop's transcript from now on (the first call starts
    the loop: its wall clock counts from here)."""
    if rec.input.get("call") != MODEL_CALL:
        return state
    loop = state.loops.get(rec.node_id) or AgentLoop(started_at_ms=rec.at_ms)
    messages = rec.input.get("messages")
    loop = _replace(loop, messages=tuple(messages) if isinstance(messages, list) else ())
    return _replace(state, loops={**state.loops, rec.node_id: loop})


def call_completed(
    state: ExecutionState, rec: NodeCompleted, run: NodeRun, graph: Graph, seq: int
) -> ExecutionState:
    node_id = rec.node_id
    loop = state.loops.get(node_id) or AgentLoop(started_at_ms=rec.at_ms)
    if call_of(run) == TOOL_CALL:
        message = _tool_result(run, _content(rec.output), is_error=False)
        return _next_call(state, node_id, _answered(loop, message), run, seq)
    reply = rec.output if isinstance(rec.output, dict) else {}
    calls = tuple(c for c in reply.get("tool_calls") or () if isinstance(c, dict))
    text = reply.get("text", "")
    assistant = {"role": "assistant", "content": text, "tool_calls": list(calls)}
    facts = rec.facts
    loop = _replace(
        loop,
        messages=(*loop.messages, assistant),
        pending=calls,
        # Approvals were of the last answer's calls: ids may repeat in the next answer
        # (Gemini numbers them per reply), and an approval never carries over to them.
        approved=(),
        iterations=loop.iterations + 1,
        input_tokens=loop.input_tokens + _int(facts.get("input_tokens")),
        output_tokens=loop.output_tokens + _int(facts.get("output_tokens")),
        cost_usd=loop.cost_usd + _float(facts.get("cost_usd")),
        best=reply.get("value", text) if text or "value" in reply else loop.best,
    )
    if calls:
        return _next_call(state, node_id, loop, run, seq)
    return _finished(state, node_id, loop.best, run, graph, seq)


def tool_failed(state: ExecutionState, rec: NodeFailed, run: NodeRun, seq: int) -> ExecutionState:
    """A tool call failed for good: the model reads the error and goes on."""
    message = _tool_result(run, f"{rec.error_type}: {rec.error}", is_error=True)
    loop = state.loops.get(rec.node_id) or AgentLoop(started_at_ms=rec.at_ms)
    return _next_call(state, rec.node_id, _answered(loop, message), run, seq)


def refused(state: ExecutionState, rec: PolicyViolation, seq: int) -> ExecutionState:
    """A refused call is answered for the model with why; the others stay pending."""
    loop = state.loops.get(rec.node_id)
    if loop is None:
        return _replace(state, last_seq=seq)
    message = {
        "role": "tool", "call_id": rec.call_id, "name": rec.tool, "is_error": True,
        "content": f"tool {rec.tool!r} is not available to this agent ({rec.rule})",
    }  # fmt: skip
    pending = list(loop.pending)
    for i, call in enumerate(pending):
        if call.get("id") == rec.call_id:
            del pending[i]
            break
    loop = _replace(loop, messages=(*loop.messages, message), pending=tuple(pending))
    return _replace(state, last_seq=seq, loops={**state.loops, rec.node_id: loop})


def approval_decided(state: ExecutionState, rec: ApprovalReceived, seq: int) -> ExecutionState:
    """A decision on the agent's first pending call: approved, it runs at the next hand-out;
    rejected (or no decision in time), the model is told and the call never runs."""
    wait = state.waits.get(rec.node_id)
    loop = state.loops.get(rec.node_id)
    if wait is None or wait.dispatch != rec.dispatch or not wait.approval or loop is None:
        return _replace(state, last_seq=seq)
    call = loop.pending[0] if loop.pending else {}
    call_id = str(call.get("id", ""))
    if rec.decision == "approved":
        loop = _replace(loop, approved=(*loop.approved, call_id))
    else:
        why = (
            "no decision came within the approval timeout"
            if rec.decision == "timed_out"
            else f"{rec.user_id} rejected it" + (f": {rec.comment}" if rec.comment else "")
        )
        name = str(call.get("name", ""))
        message = {
            "role": "tool", "call_id": call_id, "name": name, "is_error": True,
            "content": f"the call to tool {name!r} was not approved ({why})",
        }  # fmt: skip
        loop = _answered(loop, message)
    run = state.nodes[rec.node_id]
    return _replace(
        state,
        last_seq=seq,
        nodes={**state.nodes, rec.node_id: _replace(run, status="completed")},
        waits={k: v for k, v in state.waits.items() if k != rec.node_id},
        loops={**state.loops, rec.node_id: loop},
        ready=(*state.ready, rec.node_id),
    )


def over_budget(
    state: ExecutionState, rec: BudgetExceeded, graph: Graph, seq: int
) -> ExecutionState:
    """The run halts ``limit_exceeded``; an agent's best answer so far stays in state."""
    data = state.data
    loop = state.loops.get(rec.node_id)
    if loop is not None:
        data = {**data, graph.state_keys[rec.node_id]: loop.best}
    unit = "USD" if rec.limit == "cost_usd" else rec.limit
    why = (
        f"{rec.scope} budget {rec.limit} exceeded at node {rec.node_id!r}: spent {rec.spent:g}"
        f" + projected {rec.projected:g} > cap {rec.cap:g} {unit}"
    )
    return _replace(
        state,
        last_seq=seq,
        data=data,
        loops={k: v for k, v in state.loops.items() if k != rec.node_id},
        ready=without(state.ready, rec.node_id),
        limit=why,
        halt_node=rec.node_id,
    )


def spent(state: ExecutionState, facts: dict[str, Any]) -> ExecutionState:
    """Add a call's cost and tokens to the run's totals (its workflow budget)."""
    tokens = _int(facts.get("input_tokens")) + _int(facts.get("output_tokens"))
    cost = _float(facts.get("cost_usd"))
    if not tokens and not cost:
        return state
    return _replace(
        state, spent_usd=state.spent_usd + cost, spent_tokens=state.spent_tokens + tokens
    )


def _answered(loop: AgentLoop, message: dict[str, Any]) -> AgentLoop:
    return _replace(loop, messages=(*loop.messages, message), pending=loop.pending[1:])


def _next_call(
    state: ExecutionState, node_id: str, loop: AgentLoop, run: NodeRun, seq: int
) -> ExecutionState:
    """The call settled and the loop goes on: the node is ready for its next hand-out."""
    return _replace(
        state,
        last_seq=seq,
        nodes={**state.nodes, node_id: _replace(run, status="completed")},
        loops={**state.loops, node_id: loop},
        ready=(*state.ready, node_id),
        running=state.running - 1,
    )


def _finished(
    state: ExecutionState, node_id: str, answer: Any, run: NodeRun, graph: Graph, seq: int
) -> ExecutionState:
    """The model answered without tool calls: the answer is the node's output; route on."""
    data = {**state.data, graph.state_keys[node_id]: answer}
    done = _replace(
        state,
        last_seq=seq,
        data=data,
        nodes={**state.nodes, node_id: _replace(run, status="completed")},
        loops={k: v for k, v in state.loops.items() if k != node_id},
        completions=state.completions + 1,
        running=state.running - 1,
    )
    try:
        target = graph.route(node_id, data)
    except RouteError as exc:
        return _replace(done, halt=str(exc), halt_node=node_id)
    ready, arrivals, ended = route_to(done, node_id, (target,), graph, done.ready)
    return _replace(done, ready=ready, arrivals=arrivals, ended=ended)


def _tool_result(run: NodeRun, content: str, *, is_error: bool) -> dict[str, Any]:
    call_id = run.input.get("call_id", "")
    name = run.input.get("tool", "")
    return {
        "role": "tool", "call_id": call_id, "name": name, "content": content,
        "is_error": is_error,
    }  # fmt: skip


def _content(output: Any) -> str:
    """A tool's output as the model reads it: a string as is, anything else as JSON."""
    return output if isinstance(output, str) else _json.encode(output).decode()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else 0.0
