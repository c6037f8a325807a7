"""``CodeGraph``: the graph view of a code-first workflow, its nodes made from calls.

The runtime's machinery (work items, retries, timeouts, parks, approvals, the fleet) asks a
graph for a node by id. A code-first workflow has one node in its IR (its body); the nodes of
its calls are made here from their ids on first use (``analyze#3`` is a hand-out of the step
``analyze``, with its retry policy and timeout; ``@approval:pay#5`` a person's decision) and
kept, since every run of the version makes the same ones.

Example (what Services does for a workflow whose IR names code)::

    graph = CodeGraph(workflow, code_workflow, tools)
    graph.node("analyze#3").kind          # ToolKind(tool_ref="analyze")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tether.ir.types import HumanApprovalKind, Node, RetryPolicy, WaitKind, Workflow
from tether.runtime.code_first.decorators import BODY_NODE, CodeWorkflow, Step, step_node
from tether.runtime.graph import DEFAULT_RETRY, Graph
from tether.runtime.tools import ToolRegistry, UnknownTool

if TYPE_CHECKING:
    from tether.runtime.planner import PlanContext
    from tether.runtime.records import Record
    from tether.runtime.state import ExecutionState


class AnyKey(frozenset[str]):
    """Every event key: a code-first body may wait for any (it says which when it runs)."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())


#: Call nodes a code-first workflow version keeps made (a node is made again when needed).
NODES_KEPT = 4096


class CodeGraph(Graph):
    """A :class:`Graph` whose call nodes are made from their ids."""

    is_code = True

    def __init__(self, workflow: Workflow, code: CodeWorkflow, tools: ToolRegistry) -> None:
        super().__init__(workflow)
        self.code = code
        self._tools = tools
        self._policies: dict[str, RetryPolicy] = {}
        self.event_keys = AnyKey()

    def node(self, node_id: str) -> Node:
        found = self.nodes.get(node_id)
        if found is None:
            found = self.nodes[node_id] = self._made(node_id)
            if len(self.nodes) > NODES_KEPT:  # a long body's calls: keep the latest only
                oldest = next(k for k in self.nodes if k != BODY_NODE)
                del self.nodes[oldest]
        return found

    def retry_policy(self, node_id: str) -> RetryPolicy:
        node = self.node(node_id)
        policy = node.retry_policy
        if isinstance(policy, RetryPolicy):
            return policy
        return self.workflow.retry_policies.get("default", DEFAULT_RETRY)

    def ensure_step(self, s: Step) -> None:
        """Register a step the body calls with the runtime's tools (once)."""
        try:
            if self._tools.resolve(s.name) is s:
                return
        except UnknownTool:
            pass
        self._tools.add(s)

    def decide(self, state: ExecutionState, ctx: PlanContext) -> list[Record]:
        from tether.runtime.code_first.plan import decide_code

        return decide_code(state, self, ctx)

    def _made(self, node_id: str) -> Node:
        what = node_id.rpartition("#")[0]
        if what.startswith("@approval:"):
            return Node(id=node_id, kind=HumanApprovalKind(description=what[10:]))
        if what.startswith("@"):
            return Node(id=node_id, kind=WaitKind())
        s: Any = None
        with contextlib.suppress(UnknownTool):  # a worker elsewhere may have it: defaults
            s = self._tools.resolve(what)
        return step_node(node_id, what, s if isinstance(s, Step) else None)
