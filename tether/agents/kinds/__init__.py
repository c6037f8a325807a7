"""Model, agent and http nodes for a runtime: :class:`AgentKinds` (``tether.Runtime`` plugs it
in by default).

Example::

    from tether.agents.kinds import AgentKinds
    async with Runtime(url, tools=[search], node_kinds=AgentKinds()) as rt:
        run = await rt.start("research", {"query": "..."})
"""

from tether.agents.kinds.http_tool import HTTP_TOOL, HttpCaller
from tether.agents.kinds.model_tool import MODEL_TOOL, ModelCaller, OutputSchemaMismatch
from tether.agents.kinds.plugin import AgentKinds
from tether.agents.kinds.tool_schema import tool_spec, wire_name

__all__ = [
    "HTTP_TOOL",
    "MODEL_TOOL",
    "AgentKinds",
    "HttpCaller",
    "ModelCaller",
    "OutputSchemaMismatch",
    "tool_spec",
    "wire_name",
]
