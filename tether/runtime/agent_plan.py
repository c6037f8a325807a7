"""The planner's rules for an agent node: its next call, the policy and budget decisions made
before it (I12). The fold's side is :mod:`tether.runtime.agent_fold`.

When the node is ready: a hand-out that failed and may retry is handed out again as it was;
else the tool calls the model's last answer asked for go first, each refused
(``policy_violation``), waited on for a person's approval (``node_waiting``) or handed out in
turn; then the next model call, once its projected cost
and tokens fit every budget (else ``budget_exceeded``, and the run ends ``limit_exceeded``).

Example (what ``planner.decide`` does for a ready agent node)::

    records = decide_agent(node, state, graph, ctx)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from tether.ir.types import AgentKind, Budget, Node
from tether.runtime.agent_fold import MODEL_CALL, TOOL_CALL
from tether.runtime.graph import Graph
from tether.runtime.records import (
    BudgetExceeded,
    NodeFailed,
    NodeScheduled,
    NodeWaiting,
    PolicyViolation,
    Record,
)
from tether.runtime.secrets import has_reference
from tether.runtime.state_types import AgentLoop

if TYPE_CHECKING:
    from tether.runtime.planner import PlanContext
    from tether.runtime.state import ExecutionState


class AgentCalls(Protocol):
    """What the planner asks of the node-kind plug-in for an agent (bound to a workflow by
    the runtime's services)."""

    def model_call(
        self, node: Node, messages: tuple[Any, ...] | None, data: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def refusal(self, node: Node, call: Mapping[str, Any]) -> str | None: ...

    def needs_approval(self, node: Node, call: Mapping[str, Any]) -> bool: ...


def decide_agent(node: Node, state: ExecutionState, graph: Graph, ctx: PlanContext) -> list[Record]:
    prev = state.nodes.get(node.id)
    dispatch = (prev.dispatch if prev is not None else 0) + 1
    if prev is not None and prev.status == "retrying":
        from tether.runtime.planner import retry_not_before

        return [
            NodeScheduled(
                at_ms=ctx.now_ms, node_id=node.id, attempt=prev.attempt + 1, dispatch=dispatch,
                input=prev.input, not_before_ms=retry_not_before(graph, node.id, prev, ctx),
            )
        ]  # fmt: skip
    loop = state.loops.get(node.id)
    if loop is not None and loop.pending:
        return _tool_calls(node, loop, dispatch, graph, ctx)
    return _model_call(node, loop, state, graph, dispatch, ctx)


def _tool_calls(
    node: Node, loop: AgentLoop, dispatch: int, graph: Graph, ctx: PlanContext
) -> list[Record]:
    """Refuse what the policy refuses, then hand out the first allowed call (if any: when
    every call is refused, the next pass makes the model call that reads why), or wait for a
    person's approval of it first when its tool needs one."""
    out: list[Record] = []
    for call in loop.pending:
        name = str(call.get("name", ""))
        call_id = str(call.get("id", ""))
        args = call.get("arguments")
        rule = _refusal(node, call, ctx)
        if rule is not None:
            out.append(
                PolicyViolation(
                    at_ms=ctx.now_ms, node_id=node.id, tool=name, call_id=call_id, rule=rule,
                    arguments_sha256=_digest(args),
                )
            )  # fmt: skip
            continue
        assert ctx.agents is not None
        if call_id not in loop.approved and ctx.agents.needs_approval(node, call):
            out.append(_approval_wait(node, name, call_id, args, dispatch, graph, ctx))
            break
        out.append(
            NodeScheduled(
                at_ms=ctx.now_ms, node_id=node.id, attempt=1, dispatch=dispatch,
                input={"call": TOOL_CALL, "tool": name, "call_id": call_id, "arguments": args},
            )
        )  # fmt: skip
        break
    return out


def _approval_wait(
    node: Node, name: str, call_id: str, args: Any, dispatch: int, graph: Graph, ctx: PlanContext
) -> NodeWaiting:
    """The run pauses until a person decides on this call (or the approval timeout does)."""
    shown = _json.encode(args).decode()
    shown = shown if len(shown) <= 500 else shown[:500] + "..."
    kind = node.kind
    assert isinstance(kind, AgentKind)
    timeout = kind.approval_timeout_secs or graph.workflow.timeouts.approval_timeout
    return NodeWaiting(
        at_ms=ctx.now_ms, node_id=node.id, dispatch=dispatch, approval=True,
        fire_at_ms=ctx.now_ms + int(timeout * 1000) if timeout else None,
        description=f"agent {node.id!r} asks to call tool {name!r} with {shown} "
        f"(call {call_id}, decision {dispatch})",
    )  # fmt: skip


def _refusal(node: Node, call: Mapping[str, Any], ctx: PlanContext) -> str | None:
    if not isinstance(call.get("arguments"), dict):
        return "its arguments are not an object"
    if has_reference(call["arguments"]):
        # Resolved where tools run: a model must never get a secret's value that way (I14).
        return "its arguments reference a secret"
    assert ctx.agents is not None
    return ctx.agents.refusal(node, call)


def _model_call(
    node: Node,
    loop: AgentLoop | None,
    state: ExecutionState,
    graph: Graph,
    dispatch: int,
    ctx: PlanContext,
) -> list[Record]:
    assert ctx.agents is not None
    try:
        args = ctx.agents.model_call(node, loop.messages if loop else None, state.data)
    except (ValueError, LookupError) as exc:
        failed = NodeFailed(
            at_ms=ctx.now_ms, node_id=node.id, dispatch=dispatch, attempt=1, error=str(exc),
            error_type=type(exc).__name__, retryable=False,
        )  # fmt: skip
        scheduled = NodeScheduled(at_ms=ctx.now_ms, node_id=node.id, attempt=1, dispatch=dispatch)
        return [scheduled, failed]
    kind = node.kind
    assert isinstance(kind, AgentKind)
    breach = over_budget(node.id, kind.budget, loop, args, ctx.now_ms, "node")
    breach = breach or over_budget(
        node.id, graph.workflow.budget, _run_totals(state), args, ctx.now_ms, "workflow"
    )
    if breach is not None:
        return [breach]
    args["call"] = MODEL_CALL
    return [
        NodeScheduled(at_ms=ctx.now_ms, node_id=node.id, attempt=1, dispatch=dispatch, input=args)
    ]


def _run_totals(state: ExecutionState) -> AgentLoop:
    """The run's spending, as a loop's (a workflow budget has no iterations or clock)."""
    return AgentLoop(
        started_at_ms=state.started_at_ms,
        input_tokens=state.spent_tokens,
        cost_usd=state.spent_usd,
    )


def over_budget(
    node_id: str,
    budget: Budget | None,
    spent: AgentLoop | None,
    args: Mapping[str, Any],
    now_ms: int,
    scope: str,
) -> BudgetExceeded | None:
    """The breach a call with ``args`` (its projection) would make, or None."""
    if budget is None:
        return None
    spent = spent or AgentLoop(started_at_ms=now_ms)
    projected_cost = _number(args.get("projected_cost_usd"))
    projected_tokens = _number(args.get("projected_tokens"))
    tokens = spent.input_tokens + spent.output_tokens
    checks: list[tuple[str, float | None, float, float]] = [
        ("cost_usd", budget.max_cost_usd, spent.cost_usd, projected_cost),
        ("tokens", budget.max_tokens, tokens, projected_tokens),
    ]
    if scope == "node":
        elapsed = (now_ms - spent.started_at_ms) / 1000
        checks.append(("iterations", budget.max_iterations, spent.iterations, 1))
        checks.append(("wall_clock_secs", budget.wall_clock_secs, elapsed, 0))
    for limit, cap, used, projected in checks:
        if cap is not None and used + projected > cap:
            return BudgetExceeded(
                at_ms=now_ms, node_id=node_id, limit=limit, spent=round(used, 6),
                cap=cap, projected=round(projected, 6), scope=scope,
            )  # fmt: skip
    return None


def model_node_breach(
    node: Node, state: ExecutionState, graph: Graph, args: Mapping[str, Any], now_ms: int
) -> BudgetExceeded | None:
    """A model node's call against the workflow's budget."""
    return over_budget(node.id, graph.workflow.budget, _run_totals(state), args, now_ms, "workflow")


def _number(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else 0.0


_json = msgspec.json.Encoder(order="deterministic")


def _digest(value: Any) -> str:
    try:
        encoded = msgspec.json.encode(value, order="deterministic")
    except (TypeError, msgspec.EncodeError):
        encoded = repr(value).encode()
    return hashlib.sha256(encoded).hexdigest()
