"""Routing inside the fold: where a finished node sends the run (joins collect arrivals), a
ready list without one node, whether a failure is retried, an inbox without the event a wait
took. Shared by the fold's modules (state, agent_fold, code_first.fold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.ir.types import RetryPolicy
from tether.runtime.graph import Graph
from tether.runtime.records import NodeFailed

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState


def route_to(
    state: ExecutionState,
    from_node: str,
    targets: Sequence[str],
    graph: Graph,
    ready_before: tuple[str, ...],
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]], bool]:
    """Route ``from_node`` to ``targets`` (joins collect arrivals): the ready nodes, the
    arrivals and whether the run reached its end, for the caller's one replace."""
    arrivals = state.arrivals
    ended = state.ended
    if len(targets) == 1:  # the step path: one plain node next
        target = targets[0]
        if target in graph.nodes and not graph.is_join(target):
            return (*ready_before, target), arrivals, ended
    ready = list(ready_before)
    for target in targets:
        if target not in graph.nodes:
            ended = ended or graph.is_terminal_target(target)
            continue
        if graph.is_join(target):
            arrived = (*arrivals.get(target, ()), from_node)
            if graph.join_ready(target, arrived):
                arrivals = {k: v for k, v in arrivals.items() if k != target}
                ready.append(target)
            else:
                arrivals = {**arrivals, target: arrived}
            continue
        ready.append(target)
    return tuple(ready), arrivals, ended


def without(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    if item not in items:
        return items
    i = items.index(item)
    return items[:i] + items[i + 1 :]


def will_retry(policy: RetryPolicy, rec: NodeFailed) -> bool:
    """Is this failure retried: an error the policy retries, with attempts left?"""
    retry_ok = rec.retryable and (not policy.retry_on or rec.error_type in policy.retry_on)
    return retry_ok and rec.attempt < policy.max_attempts


def inbox_after_taking(inbox: dict[str, tuple[Any, ...]], key: str) -> dict[str, tuple[Any, ...]]:
    """The inbox once a wait took the oldest event under ``key`` (the key gone when empty)."""
    rest = inbox.get(key, ())[1:]
    out = {k: v for k, v in inbox.items() if k != key}
    if rest:
        out[key] = rest
    return out
