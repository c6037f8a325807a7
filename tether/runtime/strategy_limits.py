"""A strategy agent's limits in the runtime: ``state.__cost_exceeded__``, the
``limit_exceeded`` node, and the check before each of the strategy's model calls.

The SDK compiles an agent's ``max_cost_usd`` into cost guards: condition nodes that route to its
``__limit_exceeded__`` node when ``state.__cost_exceeded__`` holds. The fold sets that key to
true, once, at the ``node_completed`` whose recorded cost brings the run's spending
(``ExecutionState.spent_usd``, summed from the calls' journaled facts) to
``Workflow.cost_limit_usd``; until then it is absent, which conditions read as null (false).
Replay sets it at the same record (I2): nothing live-only goes into it.

Reaching a ``limit_exceeded`` node ends the run ``limit_exceeded``: the node's
``node_completed``, a ``limit_reached`` record and an ``execution_limit_exceeded`` record,
decided in one turn.

Before the planner hands out any of a strategy's model calls (its nodes are read from their
labels: :mod:`tether.runtime.strategy_shape`) it checks, in this order: the timeout (the
workflow's ``workflow_timeout``, from the run's start), the cost (what the run spent plus the
call's projected cost, journaled with its hand-out, against ``cost_limit_usd``: "$0.41 +
projected $0.18 > cap $0.50 -> HALT"), and, at the finalizer, whether the rounds ran out
unresolved (the last verdict did not pass, a debate's judge did not settle, react's last
thought still named a tool, the plan had more steps than were run). A limit reached is a
``limit_reached`` record in place of the call (I12): the call is never sent, the best answer
so far becomes the strategy's ``result`` (the highest-scored answer when verdicts scored
them, else the latest), and the run ends ``limit_exceeded``.

Example (what the fold and the planner do)::

    state = mark_cost(state, graph)          # after a call's facts were added to spent_usd
    records = limit_reached(node, state, graph, now_ms)
    records = before_call(node, state, graph, args, now_ms)   # [] when the call may go
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec

from tether.ir.types import LimitExceededKind, Node
from tether.runtime.fold_routes import without
from tether.runtime.graph import Graph
from tether.runtime.records import (
    ExecutionLimited,
    NodeCompleted,
    Record,
    StrategyLimitReached,
)
from tether.runtime.strategy_shape import StrategyShape

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState

#: The state key the SDK's cost guards read.
COST_EXCEEDED: Final = "__cost_exceeded__"


def mark_cost(state: ExecutionState, graph: Graph) -> ExecutionState:
    """``state`` with ``__cost_exceeded__`` true once its spending reached the cost limit."""
    cap = graph.workflow.cost_limit_usd
    if cap is None or state.spent_usd < cap or state.data.get(COST_EXCEEDED) is True:
        return state
    return msgspec.structs.replace(state, data={**state.data, COST_EXCEEDED: True})


def limit_reached(node: Node, state: ExecutionState, graph: Graph, now_ms: int) -> list[Record]:
    """The records of reaching the ``limit_exceeded`` node ``node``: it completes (routing
    nowhere) and the run ends ``limit_exceeded`` saying why."""
    kind = node.kind
    assert isinstance(kind, LimitExceededKind)
    why = kind.description or "limit reached"
    cap = graph.workflow.cost_limit_usd
    if cap is not None and state.data.get(COST_EXCEEDED) is True:
        why += f" (model calls cost {state.spent_usd:.6g} USD; the cost limit is {cap:g} USD)"
    records: list[Record] = [
        NodeCompleted(at_ms=now_ms, node_id=node.id, dispatch=0, attempt=0, output={"next": []})
    ]
    shape = graph.strategy
    if cap is not None and state.data.get(COST_EXCEEDED) is True and shape is not None:
        records.append(
            _halt(shape, node.id, state.data, "cost_usd", state.spent_usd, cap, 0.0, now_ms)
        )
    records.append(
        ExecutionLimited(at_ms=now_ms, error=f"node {node.id!r}: {why}", node_id=node.id)
    )
    return records


def before_call(
    node: Node, state: ExecutionState, graph: Graph, args: Mapping[str, Any], now_ms: int
) -> list[Record]:
    """``[limit_reached]`` when a limit stops the strategy's call at ``node``, else ``[]``."""
    shape = graph.strategy
    if shape is None or node.id not in shape.calls:
        return []
    data = state.data
    timeout = graph.workflow.timeouts.workflow_timeout
    elapsed = (now_ms - state.started_at_ms) / 1000
    if timeout is not None and elapsed >= timeout:
        return [_halt(shape, node.id, data, "timeout_secs", elapsed, timeout, 0.0, now_ms)]
    cap = graph.workflow.cost_limit_usd
    projected = args.get("projected_cost_usd")
    projected = float(projected) if isinstance(projected, int | float) else 0.0
    if cap is not None and state.spent_usd + projected > cap:
        return [_halt(shape, node.id, data, "cost_usd", state.spent_usd, cap, projected, now_ms)]
    if node.id == shape.finalizer and rounds_out(shape, data):
        rounds = float(shape.rounds)
        return [_halt(shape, node.id, data, "iterations", rounds, rounds, 0.0, now_ms)]
    return []


def rounds_out(shape: StrategyShape, data: Mapping[str, Any]) -> bool:
    """Did the strategy reach its finalizer only because its rounds ran out?"""
    if shape.verdicts:  # critic, reflection, debate: the last verdict given
        given = [v for i, v in sorted(shape.verdicts.items()) if v[0] in data]
        if not given:
            return False
        key, field = given[-1]
        verdict = data[key]
        return not (isinstance(verdict, Mapping) and verdict.get(field) is True)
    if shape.name == "react":
        thoughts = [c for c in shape.candidates if c.state_key in data]
        last = data[thoughts[-1].state_key] if thoughts else None
        action = last.get("action") if isinstance(last, Mapping) else None
        return isinstance(action, str) and action.strip().upper() != "FINISH"
    if shape.name == "plan-and-execute":
        plan = data.get("__plan__")
        steps = plan.get("steps") if isinstance(plan, Mapping) else None
        return isinstance(steps, list) and len(steps) > shape.rounds
    return False


def best_so_far(
    shape: StrategyShape, data: Mapping[str, Any]
) -> tuple[Any, str | None, float | None]:
    """The best answer so far, its state key and its score: the highest-scored answer when
    verdicts scored any (the later on a tie), else the latest; ``(None, None, None)`` before
    the first answer."""
    best: tuple[str, float] | None = None
    latest: str | None = None
    for candidate in shape.candidates:
        if candidate.state_key not in data:
            continue
        latest = candidate.state_key
        verdict = shape.verdicts.get(candidate.iteration)
        score = _score(data.get(verdict[0])) if verdict is not None else None
        if score is not None and (best is None or score >= best[1]):
            best = (candidate.state_key, score)
    if best is not None:
        return data[best[0]], best[0], best[1]
    if latest is not None:
        return data[latest], latest, None
    return None, None, None


def halted(
    state: ExecutionState, rec: StrategyLimitReached, graph: Graph, seq: int
) -> ExecutionState:
    """The fold of ``limit_reached``: the best answer so far is the strategy's result and
    the run halts (the planner's next pass ends it ``limit_exceeded``)."""
    data = state.data
    shape = graph.strategy
    if rec.best_from is not None and shape is not None:
        key = graph.state_keys[shape.finalizer] if shape.finalizer else "result"
        data = {**data, key: rec.best}
    return msgspec.structs.replace(
        state,
        last_seq=seq,
        data=data,
        ready=without(state.ready, rec.node_id),
        limit=state.limit or rec.reason,
        halt_node=state.halt_node or rec.node_id,
    )


def _halt(
    shape: StrategyShape,
    node_id: str,
    data: Mapping[str, Any],
    limit: str,
    spent: float,
    cap: float,
    projected: float,
    now_ms: int,
) -> StrategyLimitReached:
    best, best_from, score = best_so_far(shape, data)
    if score is not None:
        returning = f"returning best-so-far ({score:.2f})"
    elif best_from is not None:
        returning = f"returning best-so-far ({best_from})"
    else:
        returning = "no answer yet"
    if limit == "cost_usd":
        told = f"{_usd(spent)} + projected {_usd(projected)} > cap {_usd(cap)}"
    elif limit == "timeout_secs":
        told = f"{spent:.1f}s since the run started >= timeout {cap:g}s"
    else:
        told = f"{int(cap)} of {int(cap)} rounds ran out unresolved"
    reason = f"strategy {shape.name} at {node_id!r}: {told} -> HALT, {returning}"
    return StrategyLimitReached(
        at_ms=now_ms, node_id=node_id, limit=limit, spent=round(spent, 6), cap=cap,
        reason=reason, projected=round(projected, 6), best=best, best_from=best_from,
        score=score,
    )  # fmt: skip


def _score(verdict: Any) -> float | None:
    score = verdict.get("score") if isinstance(verdict, Mapping) else None
    if isinstance(score, int | float) and not isinstance(score, bool):
        return float(score)
    return None


def _usd(amount: float) -> str:
    return f"${amount:.2f}" if amount >= 0.01 else f"${amount:.6g}"
