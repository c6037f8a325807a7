"""Routing inside the fold: where a finished node sends the run (joins collect arrivals), a
ready list without one node, whether a failure is retried, an inbox without the event a wait
took. Shared by the fold's modules (state, agent_fold, code_first.fold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tether.ir.types import RetryPolicy
from tether.runtime.graph import Graph
from tether.runtime.records import CAUSE_LEASE_LOST, NodeFailed

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


def will_retry(policy: RetryPolicy, rec: NodeFailed, losses: int = 0) -> bool:
    """Is this failure retried: a free lease loss, or an error the policy retries with
    attempts left? ``losses``: the node's earlier lease losses that spent no attempt.

    A lease lost to a dead or silent worker (``cause`` CAUSE_LEASE_LOST) is the
    infrastructure's fault: the node's first ``policy.max_lease_losses`` of them are retried
    without spending an attempt; later ones count like the tool's own failures, so a tool that
    kills its worker every time is still stopped. ``rec.attempt`` numbers every try, so the
    attempts spent are the tries less the free losses. Records without a cause (all from
    before it existed) fold as before: ``losses`` is then 0.

    Example::

        will_retry(RetryPolicy(max_attempts=1), NodeFailed(..., attempt=1, cause="lease_lost"))
        # True: the first loss is free
    """
    if _free_loss(policy, rec, losses):
        return True
    retry_ok = rec.retryable and (not policy.retry_on or rec.error_type in policy.retry_on)
    return retry_ok and rec.attempt - losses < policy.max_attempts


def losses_after(policy: RetryPolicy, rec: NodeFailed, losses: int) -> int:
    """The node's free lease losses once ``rec`` is folded."""
    return losses + 1 if _free_loss(policy, rec, losses) else losses


def _free_loss(policy: RetryPolicy, rec: NodeFailed, losses: int) -> bool:
    return rec.cause == CAUSE_LEASE_LOST and losses < policy.max_lease_losses


def inbox_after_taking(inbox: dict[str, tuple[Any, ...]], key: str) -> dict[str, tuple[Any, ...]]:
    """The inbox once a wait took the oldest event under ``key`` (the key gone when empty)."""
    rest = inbox.get(key, ())[1:]
    out = {k: v for k, v in inbox.items() if k != key}
    if rest:
        out[key] = rest
    return out
