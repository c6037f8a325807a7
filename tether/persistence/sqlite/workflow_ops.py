"""SQL on the workflow registry, one function each, taking the connection.

``put_workflow`` runs on the writer's connection inside the transaction it owns (a job of the
writer) and never commits; the reads run on a reader connection. Apart from the turn writes in
:mod:`tether.persistence.sqlite.ops` because no turn touches the registry, as in
:mod:`tether.persistence.postgres.workflow_ops`.

Example::

    await put_workflow(writer_conn, "wf", "1", b"ir", at_ms=10)
    row = await get_workflow(reader_conn, "wf", None)      # the most recently registered
"""

from __future__ import annotations

import aiosqlite

from tether.persistence.contract import WorkflowRow, WorkflowVersionConflict


async def put_workflow(
    conn: aiosqlite.Connection, workflow_id: str, version: str, ir: bytes, at_ms: int
) -> None:
    """Register IR; the same bytes again is a no-op, different bytes a conflict."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT ir FROM workflows WHERE workflow_id = ? AND version = ?",
            (workflow_id, version),
        )
    )
    if rows:
        if bytes(rows[0][0]) != ir:
            raise WorkflowVersionConflict(
                f"workflow {workflow_id} version {version} is already registered with "
                "different IR; register the change under a new version"
            )
        return
    await conn.execute(
        "INSERT INTO workflows (workflow_id, version, ir, created_at_ms) VALUES (?, ?, ?, ?)",
        (workflow_id, version, ir, at_ms),
    )


_WF_COLS = "workflow_id, version, ir, created_at_ms"


async def get_workflow(
    conn: aiosqlite.Connection, workflow_id: str, version: str | None
) -> WorkflowRow | None:
    """One version, or the most recently registered (latest created_at_ms, then insertion)."""
    if version is None:
        sql = (
            f"SELECT {_WF_COLS} FROM workflows WHERE workflow_id = ?"
            " ORDER BY created_at_ms DESC, rowid DESC LIMIT 1"
        )
        params: tuple[str, ...] = (workflow_id,)
    else:
        sql = f"SELECT {_WF_COLS} FROM workflows WHERE workflow_id = ? AND version = ?"
        params = (workflow_id, version)
    rows = list(await conn.execute_fetchall(sql, params))
    return WorkflowRow(*rows[0]) if rows else None


async def list_workflows(conn: aiosqlite.Connection) -> list[WorkflowRow]:
    """Every registered version, by workflow id then registration order."""
    rows = await conn.execute_fetchall(
        f"SELECT {_WF_COLS} FROM workflows ORDER BY workflow_id, created_at_ms, rowid"
    )
    return [WorkflowRow(*r) for r in rows]
