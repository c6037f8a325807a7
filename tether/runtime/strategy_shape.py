"""What each node of a compiled strategy is, read from its labels (``jamjet.strategy.node``,
``.event``, ``.iteration``), whichever side compiled it: the `jamjet` SDK or Tether's YAML
(``tether.ir.strategies``). Built once per workflow version, with its ``Graph``.

Example::

    shape = read_shape(workflow)          # None for a workflow without strategy nodes
    shape.name, shape.finalizer           # "reflection", "__finalize__"
"""

from __future__ import annotations

from typing import Final, NamedTuple

from tether.ir.types import ModelKind, Workflow

_NODE: Final = "jamjet.strategy.node"
_EVENT: Final = "jamjet.strategy.event"
_ITERATION: Final = "jamjet.strategy.iteration"

#: A node kind that only one strategy has -> that strategy's name.
_NAMED_BY = {
    "react_think": "react",
    "step_executor": "plan-and-execute",
    "critic_eval": "critic",
    "reflection": "reflection",
    "parallel_agent": "consensus",
    "challenger": "debate",
}
#: The verdict nodes whose ``passed`` (``settled`` for a debate's judge) ends the rounds.
_VERDICTS = {"critic_eval": "passed", "reflection": "passed", "judge": "settled"}


class Candidate(NamedTuple):
    """An answer node: its state key and round."""

    node_id: str
    state_key: str
    iteration: int


class StrategyShape(NamedTuple):
    """The strategy's name, its model calls, its answers in round order, the verdicts by
    round (state key, and the field that says the round passed), and its finalizer."""

    name: str
    calls: frozenset[str]
    candidates: tuple[Candidate, ...]
    verdicts: dict[int, tuple[str, str]]
    finalizer: str | None
    #: How many rounds the graph unrolled (steps, thoughts or verdicts).
    rounds: int


def read_shape(workflow: Workflow) -> StrategyShape | None:
    """The strategy compiled into ``workflow``, or None when it has no strategy nodes."""
    name: str | None = None
    calls: set[str] = set()
    candidates: list[Candidate] = []
    verdicts: dict[int, tuple[str, str]] = {}
    finalizer: str | None = None
    for node in workflow.nodes.values():
        role = node.labels.get(_NODE)
        if role is None or not isinstance(node.kind, ModelKind):
            continue
        calls.add(node.id)
        name = name or _NAMED_BY.get(role)
        iteration = _int(node.labels.get(_ITERATION))
        if role == "finalizer":
            finalizer = node.id
        elif node.labels.get(_EVENT) == "iteration_started":
            candidates.append(Candidate(node.id, node.state_key, iteration))
        if role in _VERDICTS and _ITERATION in node.labels:
            verdicts[iteration] = (node.state_key, _VERDICTS[role])
    if name is None:
        return None
    candidates.sort(key=lambda c: c.iteration)  # stable: graph order within a round
    if name in ("critic", "reflection", "debate"):
        rounds = len(verdicts)
    else:
        rounds = sum(1 for c in candidates if c.node_id != "__plan__")
    return StrategyShape(name, frozenset(calls), tuple(candidates), verdicts, finalizer, rounds)


def _int(text: str | None) -> int:
    return int(text) if text is not None and text.isdigit() else 0
