"""A strategy agent's events in the events view, derived from its nodes' records and labels.

What is journaled is each node's hand-out and outcome, and ``limit_reached`` when a limit
stopped the strategy (a record of its own: a decision made before the call it stopped).
The rest is derived here, under the sequence of the record it comes from, marked
``derived``: ``strategy_iteration_started`` (the hand-out of a node that opens a round),
``tool_called`` (the outcome of a node the strategy labels so: react's observations, a
debate's counter-arguments) and ``critique`` (the outcome of a verdict node: its score and
whether it passed). Node outcomes of a strategy also carry the node's ``labels``, where
``jamjet inspect`` looks for the strategy, its rounds and its verdicts.

Example::

    labels = strategy_labels(workflow)         # node id -> labels, strategy nodes only
    extra = derived_events(entry, labels)      # [] for a record of any other node
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tether.ir.types import Workflow
from tether.runtime.records import JournalEntry, NodeCompleted, NodeScheduled
from tether.runtime.strategy_shape import read_shape

_NODE: Final = "jamjet.strategy.node"
_EVENT: Final = "jamjet.strategy.event"
_ITERATION: Final = "jamjet.strategy.iteration"

Labels = Mapping[str, Mapping[str, str]]


def strategy_labels(workflow: Workflow | None) -> dict[str, dict[str, str]]:
    """The labels of ``workflow``'s strategy nodes, by node id (empty without a strategy),
    each with the strategy's name as ``jamjet.strategy`` (what ``jamjet inspect`` looks for)."""
    shape = read_shape(workflow) if workflow is not None else None
    if workflow is None or shape is None:
        return {}
    return {
        n.id: {**n.labels, "jamjet.strategy": shape.name}
        for n in workflow.nodes.values()
        if _NODE in n.labels
    }


def derived_events(
    entry: JournalEntry, labels: Labels, created_at: str | None
) -> list[dict[str, Any]]:
    """The strategy events ``entry`` stands for (after it, under its sequence)."""
    record = entry.record
    if not isinstance(record, NodeScheduled | NodeCompleted):
        return []
    node_labels = labels.get(record.node_id)
    if node_labels is None:
        return []
    event = node_labels.get(_EVENT)
    iteration = int(node_labels.get(_ITERATION, "0") or 0)
    base = {"node_id": record.node_id, "iteration": iteration, "strategy_node": node_labels[_NODE]}
    kind: dict[str, Any] | None = None
    if isinstance(record, NodeScheduled) and event == "iteration_started" and record.attempt == 1:
        kind = {"type": "strategy_iteration_started", **base}
    elif isinstance(record, NodeCompleted) and event == "tool_called":
        kind = {"type": "tool_called", **base}
    elif isinstance(record, NodeCompleted) and event == "critic_verdict":
        verdict = record.output if isinstance(record.output, Mapping) else {}
        kind = {"type": "critique", **base, "score": verdict.get("score")}
        for key in ("passed", "settled", "feedback"):
            if key in verdict:
                kind[key] = verdict[key]
    if kind is None:
        return []
    return [{"sequence": entry.seq, "kind": kind, "created_at": created_at,
             "node_id": record.node_id, "derived": True}]  # fmt: skip
