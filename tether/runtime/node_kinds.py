"""The one seam for node kinds that do I/O (model, http, agent, eval, MCP): the runtime holds no
provider or network code; an implementation of :class:`NodeKinds` from above (``tether.agents``)
says how such a node's calls are bound, run and checked.

Every call is a work item like a tool's (journaled before it is made, its outcome before
anything follows from it: I12): the plug-in names a built-in tool that runs it (on the pool or
a fleet worker) and binds its arguments from state at hand-out, so what was sent is in the
journal. The tool returns ``{"output": ..., "facts": {...}}``: the output goes to state, the
facts (tokens, cost, model) into ``node_completed`` (see :func:`split_facts`).

Example (what ``tether.Runtime`` does, with ``AgentKinds`` from the agents layer above)::

    rt = Runtime(url, tools=[search], node_kinds=AgentKinds())
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from tether.ir.errors import ValidationIssue
from tether.ir.types import Node, Workflow
from tether.runtime.tools import Tool, ToolRegistry

#: Binds one call's arguments from state; raises ValueError/LookupError with a message.
CallBinder = Callable[[Mapping[str, Any]], dict[str, Any]]

#: The key of the facts beside the output in what a call's tool returns.
FACTS = "facts"
OUTPUT = "output"


class NodeKinds(Protocol):
    """Node kinds plugged into a runtime (one object per runtime; no global registry)."""

    def handles(self, node: Node) -> bool:
        """Does this plug-in run ``node``'s kind?"""
        ...

    def tools(self) -> Iterable[Tool]:
        """The built-in tools that make its calls (registered with the runtime's tools)."""
        ...

    def check(self, wf: Workflow, tools: ToolRegistry) -> list[ValidationIssue]:
        """What keeps ``wf`` from running (an unknown model, tool, MCP server, template
        variable), each naming the node: refused at registration."""
        ...

    def binding(self, wf: Workflow, node: Node, tools: ToolRegistry) -> tuple[str, CallBinder]:
        """The tool that runs ``node``'s calls and how its arguments are bound (for an agent
        node: its model calls)."""
        ...

    def model_call(
        self,
        wf: Workflow,
        node: Node,
        messages: tuple[Any, ...] | None,
        data: Mapping[str, Any],
        tools: ToolRegistry,
    ) -> dict[str, Any]:
        """An agent node's next model call: the arguments of its tool, with the transcript
        (``messages``; None: the first call, which starts it) and ``projected_cost_usd`` /
        ``projected_tokens`` for the budget check made before it."""
        ...

    def refusal(self, wf: Workflow, node: Node, call: Mapping[str, Any]) -> str | None:
        """Why an agent may not make the tool call ``call`` (``{"id", "name",
        "arguments"}``) the model asked for, or None."""
        ...

    def needs_approval(
        self, wf: Workflow, node: Node, call: Mapping[str, Any], tools: ToolRegistry
    ) -> bool:
        """Must a person approve the allowed tool call ``call`` before it runs?"""
        ...

    def tool_call(
        self, wf: Workflow, node: Node, call: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The tool that runs an allowed agent tool call, and its input."""
        ...

    async def start(self) -> None:
        """Called as the runtime starts, in the task that later calls :meth:`aclose` (a task
        group opened here, for servers the calls start, is closed there)."""
        ...

    async def aclose(self) -> None:
        """Release clients and servers (called when the runtime stops)."""
        ...


def split_facts(output: Any) -> tuple[Any, dict[str, Any]]:
    """The output and the facts of what a plug-in's call tool returned. A value of another
    shape is all output (a remote worker of another version, say): nothing is lost."""
    if isinstance(output, dict) and OUTPUT in output and set(output) <= {OUTPUT, FACTS}:
        facts = output.get(FACTS)
        return output[OUTPUT], facts if isinstance(facts, dict) else {}
    return output, {}
