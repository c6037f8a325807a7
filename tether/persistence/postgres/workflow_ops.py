"""SQL on the workflow registry, one function each, taking the connection.

``put_workflow`` runs on the writer's connection inside the transaction it owns; the reads
run on a reader connection.

Example::

    await put_workflow(writer_conn, "wf", "1", b"ir", at_ms=10)
    row = await get_workflow(reader_conn, "wf", None)      # the most recently registered
"""

from __future__ import annotations

from tether.persistence.contract import WorkflowRow, WorkflowVersionConflict
from tether.persistence.postgres.connection import Conn

_COLS = "workflow_id, version, ir, created_at_ms"


async def put_workflow(conn: Conn, workflow_id: str, version: str, ir: bytes, at_ms: int) -> None:
    """Register IR; the same bytes again is a no-op, different bytes a conflict."""
    cur = await conn.execute(
        "INSERT INTO tether_workflows (workflow_id, version, ir, created_at_ms)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (workflow_id, version) DO NOTHING",
        (workflow_id, version, ir, at_ms),
    )
    if cur.rowcount == 1:
        return
    cur = await conn.execute(
        "SELECT ir FROM tether_workflows WHERE workflow_id = %s AND version = %s",
        (workflow_id, version),
    )
    row = await cur.fetchone()
    if row is None or bytes(row[0]) != ir:
        raise WorkflowVersionConflict(
            f"workflow {workflow_id} version {version} is already registered with "
            "different IR; register the change under a new version"
        )


async def get_workflow(conn: Conn, workflow_id: str, version: str | None) -> WorkflowRow | None:
    """One version, or the most recently registered (latest created_at_ms, then order)."""
    if version is None:
        cur = await conn.execute(
            f"SELECT {_COLS} FROM tether_workflows WHERE workflow_id = %s"
            " ORDER BY created_at_ms DESC, registered DESC LIMIT 1",
            (workflow_id,),
        )
    else:
        cur = await conn.execute(
            f"SELECT {_COLS} FROM tether_workflows WHERE workflow_id = %s AND version = %s",
            (workflow_id, version),
        )
    row = await cur.fetchone()
    return WorkflowRow(*row) if row is not None else None


async def list_workflows(conn: Conn) -> list[WorkflowRow]:
    """Every registered version, by workflow id then registration order."""
    cur = await conn.execute(
        f"SELECT {_COLS} FROM tether_workflows ORDER BY workflow_id, created_at_ms, registered"
    )
    return [WorkflowRow(*r) for r in await cur.fetchall()]
