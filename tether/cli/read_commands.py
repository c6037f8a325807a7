"""The commands that read an engine: ``executions``, ``workflows``, ``schedules``,
``inspect``, ``events``.

Tables have a header row; ``--json`` prints one JSON document (a list, or an object), so a
script can parse the whole output at once.

Example::

    $ tether executions --status paused
    EXECUTION                         STATUS     WORKFLOW       STARTED
    exec_01M96...                     paused     pay@1          2026-12-06T21:39:39.030+00:00
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Final

from tether.cli.api_client import CliError, EngineApi
from tether.cli.strategy_lines import strategy_line
from tether.ir.identity import short_digest
from tether.persistence.contract import EXECUTION_STATUSES

#: What ``--status`` accepts.
STATUSES: Final = EXECUTION_STATUSES
#: A failure's traceback lines ``inspect`` shows (the record keeps more, bounded).
TRACEBACK_LINES: Final = 12


def executions_command(api: EngineApi, args: argparse.Namespace) -> int:
    rows = api.get("/executions", status=args.status, limit=args.limit)["executions"]
    if args.json:
        print(json.dumps(rows))
        return 0
    _table(
        ("EXECUTION", "STATUS", "WORKFLOW", "STARTED"),
        [
            (
                r["execution_id"],
                r["status"],
                f"{r['workflow_id']}@{r['workflow_version']}",
                r["started_at"] or "",
            )
            for r in rows
        ],
    )
    return 0


def workflows_command(api: EngineApi, args: argparse.Namespace) -> int:
    rows = api.get("/workflows")["workflows"]
    if args.json:
        print(json.dumps(rows))
        return 0
    _table(
        ("WORKFLOW", "DIGEST", "REGISTERED"),
        [
            (f"{r['workflow_id']}@{r['version']}", short_digest(r["digest"]), r["created_at"])
            for r in rows
        ],
    )
    return 0


def schedules_command(api: EngineApi, args: argparse.Namespace) -> int:
    rows = api.get("/schedules")["schedules"]
    if args.json:
        print(json.dumps(rows))
        return 0
    _table(
        ("SCHEDULE", "WORKFLOW", "CRON", "NEXT FIRE", "STATE"),
        [
            (
                r["schedule_id"],
                f"{r['workflow_id']}@{r['workflow_version']}",
                f"{r['cron']} ({r['timezone']})",
                r["next_fire_at"] or "",
                ("paused" if r["paused"] else "active")
                + (f": last fire failed: {r['last_error']}" if r["last_error"] else ""),
            )
            for r in rows
        ],
    )
    return 0


def events_command(api: EngineApi, args: argparse.Namespace) -> int:
    path = f"/executions/{args.execution_id}/events"
    events = api.get(path, node_id=args.node)["events"]
    if args.node is not None and not events:
        _known_node(api, path, args.node, args.execution_id)
    if args.json:
        print(json.dumps({"events": events}))
        return 0
    for e in events:
        kind = dict(e["kind"])
        kind_type = kind.pop("type")
        print(f"{e['sequence']:>5}  {e['created_at']}  {kind_type:<20} "
              f"{json.dumps(kind, sort_keys=True)}")  # fmt: skip
    return 0


def _known_node(api: EngineApi, path: str, node: str, eid: str) -> None:
    """No record names ``node``: say so, and which nodes the journal has."""
    every = api.get(path)["events"]
    nodes = sorted({e["kind"]["node_id"] for e in every if e["kind"].get("node_id")})
    raise CliError(
        f"execution {eid} has no records of node {node!r} (nodes in its journal: "
        f"{', '.join(nodes) or 'none yet'})"
    )


def inspect_command(api: EngineApi, args: argparse.Namespace) -> int:
    view = api.get(f"/executions/{args.execution_id}")
    events = api.get(f"/executions/{args.execution_id}/events")["events"]
    if args.json:
        print(json.dumps({"execution": view, "events": events}))
        return 0
    print(f"{view['execution_id']}  {view['workflow_id']}@{view['workflow_version']}  "
          f"{view['status']}")  # fmt: skip
    origin = view.get("forked_from")
    if origin:
        print(f"forked from {origin['execution_id']} at record {origin['at_seq']}")
    if view.get("error"):
        print(f"error: {view['error']}")
    if view.get("output") is not None:
        print(f"output: {json.dumps(view['output'], sort_keys=True)}")
    print(f"state: {json.dumps(view.get('current_state'), sort_keys=True)}")
    nodes: set[str] = set()
    for e in events:
        line = _node_line(e["kind"])
        if line is not None:
            nodes.add(e["kind"]["node_id"])
            print(f"  {e['created_at']}  {line}")
            _traceback(e["kind"])
    for held in view.get("held") or []:  # not journaled: the engine holds it until then
        print(f"  {'(now)':<29}  {held['node_id']:<16} … {held['reason']}")
    count = f"{len(nodes)} node{'' if len(nodes) == 1 else 's'}"
    records = sum(1 for e in events if not e.get("derived"))
    print(f"{records} records, {count}")
    return 0


def _node_line(kind: dict[str, Any]) -> str | None:
    """One line for a node's outcome (work, control and waits alike), or None."""
    node, kind_type = kind.get("node_id"), kind["type"]
    if node is None:
        return None
    if kind_type == "node_completed":
        if kind.get("dispatch", 0) == 0 and str(node).startswith("@"):  # a code-first value
            return f"{node:<16} = recorded"
        if kind.get("dispatch", 0) == 0:  # a control node: routed in the fold, no hand-out
            return f"{node:<16} → routed"
        return (f"{node:<16} ✓ attempt {kind['attempt']}  {kind.get('duration_ms', 0)}ms"
                f"{_facts(kind)}")  # fmt: skip
    if kind_type == "node_failed":
        error, error_type = kind.get("error", ""), kind.get("error_type", "")
        if error_type and not error.startswith(f"{error_type}:"):  # a tool's error says it
            error = f"{error_type}: {error}" if error else error_type
        return f"{node:<16} ✗ attempt {kind['attempt']}: {error}".rstrip()
    if kind_type == "node_waiting":
        return f"{node:<16} … waiting{' for approval' if kind.get('approval') else ''}"
    if kind_type == "approval_received":
        return f"{node:<16} ✓ {kind['decision']} by {kind['user_id']}"
    if kind_type == "wait_completed":
        return f"{node:<16} ✓ by {kind['by']}"
    if kind_type in ("policy_violation", "budget_exceeded"):
        return f"{node:<16} ! {kind_type}"
    said = strategy_line(kind)
    return None if said is None else f"{node:<16} {said}"


def _facts(kind: dict[str, Any]) -> str:
    if "gen_ai_model" in kind:
        return (f"  {kind['gen_ai_model']} {kind.get('input_tokens', 0)}+"
                f"{kind.get('output_tokens', 0)} tokens ${kind.get('cost_usd', 0):g}")  # fmt: skip
    return ""


def _traceback(kind: dict[str, Any]) -> None:
    trace = kind.get("traceback")
    if kind["type"] == "node_failed" and isinstance(trace, str) and trace:
        lines = trace.rstrip().splitlines()
        for line in lines[-TRACEBACK_LINES:]:
            print(f"      {line}")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
