"""Which code-first workflows this engine can run: the ``@workflow`` bodies it was given
(``tether dev --modules``). A code-first IR (``code="module:qualname"``) names its body; the
engine never imports what an IR names, so a body it was not started with is a refusal at
registration, saying which module to serve, not a run that fails later.

Example::

    check_code_served(wf, runtime_internals(rt).services.code_workflows)
"""

from __future__ import annotations

from collections.abc import Mapping

from tether.errors import TetherError
from tether.ir.types import Workflow
from tether.runtime.code_first.decorators import CodeWorkflow


class CodeNotServed(TetherError):
    """A code-first workflow whose body this engine does not have (422)."""


def check_code_served(wf: Workflow, bodies: Mapping[str, CodeWorkflow]) -> None:
    """Refuse ``wf`` when it is code-first and its body is not among ``bodies`` under the same
    ``id@version`` (another workflow's body at that place would run the wrong code)."""
    if wf.code is None:
        return
    module = wf.code.partition(":")[0]
    body = bodies.get(wf.code)
    if body is None:
        raise CodeNotServed(
            f"workflow {wf.ref} is code-first ({wf.code}) and this engine does not have its "
            f"body: start the engine with `tether dev --modules {module}`"
        )
    if body.ref != wf.ref:
        raise CodeNotServed(
            f"workflow {wf.ref} names the body {wf.code}, which this engine serves as "
            f"workflow {body.ref}: deploy it under that id and version"
        )
