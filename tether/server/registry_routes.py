"""``GET /workflows/{id}/{version}``: a registered version's IR as the engine keeps it.

What was deployed is what runs (I13): the IR comes back whole, governance settings included
(``governance.redact``, ``budget``, ``allowed_tools``, ``cost_limit_usd``, approval settings
on nodes), with the digest that names its content. ``version`` ``latest`` is the version
registered last. An unknown id or version is a 404.

Example::

    GET /workflows/report/1
    -> 200 {"workflow_id": "report", "version": "1", "digest": "sha256:...", "ir": {...}}
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import FromPath

from tether.errors import WorkflowNotFound
from tether.ir.identity import workflow_digest
from tether.ir.types import decode_workflow
from tether.runtime.internals import runtime_internals


@get("/workflows/{workflow_id:str}/{version:str}")
async def get_workflow(
    request: Request[Any, Any, Any], workflow_id: FromPath[str], version: FromPath[str]
) -> dict[str, Any]:
    store = runtime_internals(request.app.state.runtime).services.store
    row = await store.get_workflow(workflow_id, None if version == "latest" else version)
    if row is None:
        raise WorkflowNotFound(f"no workflow {workflow_id}@{version} is registered")
    wf = decode_workflow(row.ir)
    return {
        "workflow_id": wf.workflow_id,
        "version": wf.version,
        "digest": workflow_digest(wf),
        "ir": msgspec.to_builtins(wf),
    }


ROUTES = [get_workflow]
