"""The WHERE and ORDER BY of the keyset pages (:mod:`tether.persistence.pages`), for SQL
stores: SQLite and Postgres differ only in the parameter mark, a table alias and the
case-folding LIKE, given here as a :class:`Dialect`.

Example::

    where, params = execution_where(query, SQLITE, with_status=True)
"""

from __future__ import annotations

from typing import Any

import msgspec

from tether.persistence.pages import ExecutionQuery, PagePosition, like_pattern

#: The run views' columns (tether.persistence.views), as the projector copies them from the
#: executions index: the same names in both tables.
VIEW_COLUMNS = (
    "execution_id, workflow_id, workflow_version, status, created_at_ms, updated_at_ms, error"
)


class Dialect(msgspec.Struct, frozen=True):
    #: The parameter mark (``?`` or ``%s``).
    mark: str
    #: Put before each column (``e.`` for an aliased table, or nothing).
    prefix: str
    #: The operator that matches a pattern ignoring the case of ASCII letters only.
    like: str


#: SQLite's LIKE ignores the case of ASCII letters only, as the contract says.
SQLITE = Dialect("?", "", "LIKE")
#: ILIKE under COLLATE "C" folds ASCII letters only, as SQLite's LIKE does.
POSTGRES = Dialect("%s", "e.", "ILIKE")


def execution_where(
    query: ExecutionQuery, d: Dialect, *, with_status: bool
) -> tuple[list[str], list[Any]]:
    """The conditions ``query`` sets on the executions index, and their parameters."""
    where: list[str] = []
    params: list[Any] = []
    for column, op, value in (
        ("status", "=", query.status if with_status else None),
        ("workflow_id", "=", query.workflow_id),
        ("created_at_ms", ">=", query.created_from_ms),
        ("created_at_ms", "<", query.created_before_ms),
    ):
        if value is not None:
            where.append(f"{d.prefix}{column} {op} {d.mark}")
            params.append(value)
    if query.id_contains is not None:
        where.append(f"{d.prefix}execution_id {d.like} {d.mark} ESCAPE '\\'")
        params.append(like_pattern(query.id_contains))
    return where, params


def keyset(
    id_column: str, after: PagePosition | None, oldest_first: bool, d: Dialect
) -> tuple[list[str], list[Any], str]:
    """The condition that starts a page strictly after ``after``, and the page's order."""
    direction = "ASC" if oldest_first else "DESC"
    created, ident = f"{d.prefix}created_at_ms", f"{d.prefix}{id_column}"
    order = f" ORDER BY {created} {direction}, {ident} {direction}"
    if after is None:
        return [], [], order
    compare = ">" if oldest_first else "<"
    where = f"({created}, {ident}) {compare} ({d.mark}, {d.mark})"
    return [where], [after.created_at_ms, after.id], order
