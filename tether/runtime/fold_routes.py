"""Routing inside the fold: where a finished node sends the run (joins collect arrivals), and
a ready list without one node. Shared by the fold's modules (state, agent_fold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.runtime.graph import Graph

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
