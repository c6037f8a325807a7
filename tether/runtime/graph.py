"""A workflow compiled for interpretation: routing tables, join sets and retry policies.

Built once per registered workflow version and shared by every execution of it. Routing is a
pure function of the IR and the state, so the fold (:mod:`tether.runtime.state`) can call it.

Example::

    graph = Graph(workflow)
    graph.route("fetch", {"score": 3})   # -> ["summarise"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.ir.conditions import Condition, ConditionEvalError, compile_condition
from tether.ir.eval_spec import node_before
from tether.ir.types import (
    CONTROL_KINDS,
    END,
    IO_KINDS,
    AgentKind,
    BranchKind,
    EndKind,
    EvalKind,
    HumanApprovalKind,
    JoinKind,
    Node,
    ParallelKind,
    PythonFnKind,
    RetryPolicy,
    WaitKind,
    Workflow,
)
from tether.runtime.parallel_blocks import analyze_parallel_blocks
from tether.runtime.strategy_shape import StrategyShape, read_shape

#: Used when neither the node nor the workflow names a retry policy.
DEFAULT_RETRY = RetryPolicy()


class RouteError(Exception):
    """No way out of a node for this state (no condition held, or a condition failed)."""


class Graph:
    """Routing view of one workflow version."""

    #: A code-first workflow's (``tether.runtime.code_first.graph.CodeGraph``).
    is_code = False

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.nodes: dict[str, Node] = dict(workflow.nodes)
        self._edges: dict[str, list[tuple[Condition | None, str, str]]] = {}
        for edge in workflow.edges:
            cond = compile_condition(edge.condition) if edge.condition else None
            self._edges.setdefault(edge.from_, []).append((cond, edge.to, edge.condition or ""))
        self._cases: dict[str, list[tuple[Condition | None, str, str]]] = {}
        for node in workflow.nodes.values():
            if isinstance(node.kind, BranchKind):
                self._cases[node.id] = [
                    (compile_condition(c.when) if c.when else None, c.to, c.when or "")
                    for c in node.kind.cases
                ]
        #: Joins naming the nodes they wait for.
        self.join_waits = {
            node.id: frozenset(node.kind.wait_for)
            for node in workflow.nodes.values()
            if isinstance(node.kind, JoinKind) and node.kind.wait_for
        }
        #: Arrivals every other join waits for (see parallel_blocks); shapes with no single
        #: meaning are refused when the workflow is registered (check_runnable).
        self.join_counts, _ = analyze_parallel_blocks(workflow)
        self._retry = {node_id: self._resolve_retry(node) for node_id, node in self.nodes.items()}
        # Precomputed per node: the routing and kind checks run on every step.
        self.control_ids = frozenset(
            n.id for n in workflow.nodes.values() if isinstance(n.kind, CONTROL_KINDS)
        )
        self.state_keys = {n.id: n.state_key for n in workflow.nodes.values()}
        #: python_fn steps without an output_key: the jamjet SDK's whole-state steps, whose
        #: dict output (the state they changed) is merged into state rather than stored.
        self.merge_ids = frozenset(
            n.id
            for n in workflow.nodes.values()
            if isinstance(n.kind, PythonFnKind) and n.output_key is None
        )
        #: Nodes run by a plug-in (tether.runtime.node_kinds): their outcomes carry facts.
        self.io_ids = frozenset(
            n.id for n in workflow.nodes.values() if isinstance(n.kind, IO_KINDS)
        )
        #: Agent nodes: handed out once per model or tool call (tether.runtime.agent_fold).
        self.agent_ids = frozenset(
            n.id for n in workflow.nodes.values() if isinstance(n.kind, AgentKind)
        )
        #: Eval nodes: their verdict routes the run (tether.runtime.eval_routes), a retrying
        #: one back to the node before it.
        self.eval_ids = frozenset(
            n.id for n in workflow.nodes.values() if isinstance(n.kind, EvalKind)
        )
        self.eval_retry_to = {e: node_before(workflow, e) for e in self.eval_ids}
        #: The external event keys its wait nodes wait for.
        self.event_keys = frozenset(
            n.kind.correlation_key
            for n in workflow.nodes.values()
            if isinstance(n.kind, WaitKind) and n.kind.correlation_key
        )
        #: A strategy agent's nodes, read from their labels (tether.runtime.strategy_limits).
        self.strategy: StrategyShape | None = read_shape(workflow)
        self._only_target = {
            src: edges[0][1]
            for src, edges in self._edges.items()
            if len(edges) == 1 and edges[0][0] is None
        }
        #: Plain work nodes whose one unconditional way out is another plain work node: the
        #: common step's turn (``tether.runtime.step_plan``) is planned in one pass for them.
        self.step_next: dict[str, str] = self._step_successors()
        #: Plain work nodes whose one unconditional way out is the end, and the start node if
        #: it is a plain work node: the run's last and first turns go the same way.
        self.step_ends: frozenset[str] = frozenset()
        self.step_start: str | None = None
        if self._plain_graph():
            self.step_ends = frozenset(
                src
                for src, dst in self._only_target.items()
                if dst == END and END not in self.nodes and self._plain_step(src)
            )
            start = workflow.start_node
            self.step_start = start if self._plain_step(start) else None

    def _plain_graph(self) -> bool:
        """No budget, cost limit, continue-as-new or strategy: nothing that can end or roll
        the run between two steps (with one, every turn goes the general way)."""
        wf = self.workflow
        return not self.is_code and (
            wf.budget is None
            and wf.continue_as_new is None
            and wf.cost_limit_usd is None
            and self.strategy is None
        )

    def _plain_step(self, node_id: str) -> bool:
        """A work node whose hand-out is a tool call and nothing else (no control, wait,
        approval, join, agent, eval or plug-in kind)."""
        node = self.nodes.get(node_id)
        if node is None or node_id in self.control_ids or self.is_join(node_id):
            return False
        if node_id in self.io_ids or node_id in self.agent_ids or node_id in self.eval_ids:
            return False
        return not isinstance(node.kind, WaitKind | HumanApprovalKind)

    def _step_successors(self) -> dict[str, str]:
        if not self._plain_graph():
            return {}
        return {
            src: dst
            for src, dst in self._only_target.items()
            if self._plain_step(src) and self._plain_step(dst)
        }

    def join_ready(self, join_id: str, arrived: tuple[str, ...]) -> bool:
        """Has everything the join waits for arrived?"""
        count = self.join_counts.get(join_id)
        if count is not None:
            return len(arrived) >= count
        return self.join_waits[join_id] <= set(arrived)

    def _resolve_retry(self, node: Node) -> RetryPolicy:
        policy = node.retry_policy
        if isinstance(policy, RetryPolicy):
            return policy
        if isinstance(policy, str) and policy in self.workflow.retry_policies:
            return self.workflow.retry_policies[policy]
        return self.workflow.retry_policies.get("default", DEFAULT_RETRY)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def decide(self, state: Any, ctx: Any) -> list[Any]:
        """What a code-first body decides (only a CodeGraph has one)."""
        raise TypeError(f"workflow {self.workflow.ref} is a graph, not code")

    def is_terminal_target(self, node_id: str) -> bool:
        """``end`` without a node of that name, or an EndKind node."""
        node = self.nodes.get(node_id)
        return (node is None and node_id == END) or (
            node is not None and isinstance(node.kind, EndKind)
        )

    def is_control(self, node_id: str) -> bool:
        return node_id in self.control_ids

    def is_join(self, node_id: str) -> bool:
        return node_id in self.join_counts or node_id in self.join_waits

    def retry_policy(self, node_id: str) -> RetryPolicy:
        return self._retry[node_id]

    def route(self, node_id: str, state: Mapping[str, Any]) -> str:
        """The next node after ``node_id``: first edge whose condition holds, else the first
        unconditional edge."""
        only = self._only_target.get(node_id)
        if only is not None:
            return only
        return _first_match(node_id, self._edges.get(node_id, []), state, "outgoing edge")

    def has_conditions(self, node_id: str) -> bool:
        """Does any edge out of ``node_id`` carry a condition (so it can route a decision)?"""
        return any(cond is not None for cond, _, _ in self._edges.get(node_id, []))

    def choose_branch(self, node_id: str, state: Mapping[str, Any]) -> str:
        """The target of a branch node: first case that holds, else its default."""
        node = self.nodes[node_id]
        assert isinstance(node.kind, BranchKind)
        cases = list(self._cases.get(node_id, []))
        if node.kind.default is not None:
            cases.append((None, node.kind.default, ""))
        if not cases:
            return self.route(node_id, state)
        return _first_match(node_id, cases, state, "case")

    def parallel_targets(self, node_id: str) -> list[str]:
        kind = self.nodes[node_id].kind
        assert isinstance(kind, ParallelKind)
        return list(kind.branches)


def _first_match(
    node_id: str,
    options: list[tuple[Condition | None, str, str]],
    state: Mapping[str, Any],
    what: str,
) -> str:
    fallback: str | None = None
    for cond, target, source in options:
        if cond is None:
            if fallback is None:
                fallback = target
            continue
        try:
            if cond.evaluate(state):
                return target
        except ConditionEvalError as exc:
            raise RouteError(f"node {node_id!r}: condition {source!r} failed: {exc}") from exc
    if fallback is not None:
        return fallback
    if not options:
        raise RouteError(f"no route from node {node_id!r}: it has no {what}")
    raise RouteError(f"no route from node {node_id!r}: no {what} condition held")
