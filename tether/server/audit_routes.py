"""``GET /executions/{id}/audit/verify``: check an execution's audit chain and signed heads.

The key ring comes from the engine's key directory (``TETHER_AUDIT_KEYS``, default
``.tether/keys``). 200 with the verdict whether or not the chain holds (``ok`` says; a broken
chain names ``bad_seq`` and ``problem``); 404 for an execution with no rows or signatures; 400
when the store keeps no audit log.

Example::

    GET /executions/exec_01J.../audit/verify
    -> 200 {"execution_id": "exec_01J...", "ok": true, "rows": 42, "chained_from": 1, ...}
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import FromPath

from tether.errors import ExecutionNotFound, TetherError
from tether.governance.keys import AuditKeyError, keys_dir, load_keyring
from tether.governance.store_audit import AuditUnavailable, verify_stored
from tether.runtime.internals import runtime_internals


class AuditRefused(TetherError):
    """The audit log cannot be checked here (no log on this store, an unusable key ring)."""


@get("/executions/{execution_id:str}/audit/verify")
async def verify_audit(
    request: Request[Any, Any, Any], execution_id: FromPath[str]
) -> dict[str, Any]:
    store = runtime_internals(request.app.state.runtime).services.store
    try:
        ring = load_keyring(keys_dir())
        verdict = await verify_stored(store, ring, execution_id)
    except (AuditUnavailable, AuditKeyError) as exc:
        raise AuditRefused(str(exc)) from exc
    if verdict.rows == 0 and verdict.signatures == 0:
        raise ExecutionNotFound(f"no execution {execution_id}")
    body: dict[str, Any] = msgspec.to_builtins(verdict)
    return body


ROUTES = [verify_audit]
