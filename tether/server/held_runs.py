"""What the API says of tools the engine lacks: runs held for a worker serving one, and the
warning a registration gets when no engine module and no joined worker serves a tool.

Example::

    held_view(rt, "exec_01...")
    # [{"node_id": "embed", "tool": "embed", "queue": "gpu",
    #   "reason": "waiting for a worker serving tool 'embed' on queue 'gpu'"}]
"""

from __future__ import annotations

from typing import Any

from tether.ir.types import Workflow
from tether.runtime.announced_tools import unserved_tools, unserved_warning
from tether.runtime.internals import runtime_internals
from tether.runtime.runtime import Runtime


def held_view(rt: Runtime, execution_id: str) -> list[dict[str, Any]]:
    """The run's nodes held until a worker serving their tool joins (empty: none)."""
    announced = runtime_internals(rt).services.announced
    if announced is None:
        return []
    return [
        {"node_id": h.node_id, "tool": h.tool, "queue": h.queue, "reason": h.reason}
        for h in announced.holds_of(execution_id)
    ]


def registration_warnings(rt: Runtime, wf: Workflow) -> list[str]:
    """What a registered workflow will wait for: tools nobody serves yet."""
    announced = runtime_internals(rt).services.announced
    if announced is None:
        return []
    unserved, _ = unserved_tools(wf, rt.tools, announced)
    return [unserved_warning(wf, unserved)] if unserved else []


def announced_view(rt: Runtime) -> dict[str, Any]:
    """The tools workers announce now (``GET /workers``'s ``tools``)."""
    announced = runtime_internals(rt).services.announced
    return {} if announced is None else announced.serving()
