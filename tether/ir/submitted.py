"""Compile a workflow someone submitted (an API body, an upload): bounded, pure, thread-safe.

``compile_submitted_ir`` is what a server calls on an IR dict it received. It is a pure
function of its arguments (no I/O, no shared mutable state but the thread-safe cache of
compiled conditions), so it can run off the event loop::

    wf = await asyncio.to_thread(compile_submitted_ir, body, "POST /workflows")

Its cost is bounded by ``InputLimits`` (sizes are checked before the work they bound, and
validation is linear), and every refusal is a ``WorkflowError`` whose message says what and
where, ready to return to the client as it is (I10).

Example::

    try:
        wf = compile_submitted_ir(body, source="upload.json")
    except WorkflowError as exc:
        return 400, str(exc)
"""

from __future__ import annotations

from typing import Any

from tether.ir.errors import WorkflowInvalid
from tether.ir.jamjet_ir import workflow_from_ir
from tether.ir.limits import DEFAULT_LIMITS, InputLimits
from tether.ir.types import Workflow
from tether.ir.validation import validate


def compile_submitted_ir(
    ir: Any, source: str = "<ir>", *, limits: InputLimits = DEFAULT_LIMITS
) -> Workflow:
    """Build and validate a ``Workflow`` from an IR dict; raises ``WorkflowError``.

    ``ir`` is the decoded body (the jamjet SDK's canonical IR, or Tether's own).
    """
    wf = workflow_from_ir(ir, source=source, limits=limits)
    issues = validate(wf)
    if issues:
        raise WorkflowInvalid(issues, source=source)
    return wf
