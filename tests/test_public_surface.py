"""The public surface of ``tether``: the names it exports, each resolving at run time and
typed for a user's type checker (a name typed ``Any`` checks nothing in user code)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tether

ROOT = Path(__file__).resolve().parents[1]

#: Pinned: adding or removing a public name is a deliberate change to this list too.
PUBLIC = [
    "AmbiguousApproval",
    "ApprovalNotPending",
    "ApproverNotAllowed",
    "ExecutionBroken",
    "ExecutionCancelledError",
    "ExecutionFailedError",
    "ExecutionIdInUse",
    "ExecutionNotFound",
    "ExecutionNotRunning",
    "ExecutionState",
    "InvalidInput",
    "JournalEntry",
    "NonRetryableError",
    "RateLimited",
    "Run",
    "Runtime",
    "ScheduleNotFound",
    "TetherError",
    "Tool",
    "UnsupportedNode",
    "WorkflowNotFound",
    "WorkflowVersionConflict",
    "tool",
    "ChildFailed",
    "CodeWorkflow",
    "Decision",
    "NondeterminismError",
    "Step",
    "StepFailed",
    "WorkflowContext",
    "current_context",
    "step",
    "workflow",
    "DeployError",
    "Deployment",
    "deploy",
]


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert sorted(tether.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(tether, name) is not None
    namespace: dict[str, object] = {}
    exec("from tether import *", namespace)  # what a star import gives a user
    assert set(PUBLIC) <= set(namespace)
    assert set(PUBLIC) <= set(dir(tether))


def test_the_type_checkers_list_and_the_runtime_homes_agree() -> None:
    """tether/__init__.py names each export twice: as an import type checkers read, and in
    the table that loads it at run time. They must say the same, name for name and home."""
    tree = ast.parse((ROOT / "tether" / "__init__.py").read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body
        if isinstance(n, ast.If) and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"
    )  # fmt: skip
    typed = {
        alias.asname: stmt.module
        for stmt in block.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
        if alias.asname == alias.name  # ``X as X``: an explicit export
    }
    assert typed == tether._HOMES


def test_every_export_is_typed_for_a_user_of_mypy(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from tether import " + ", ".join(PUBLIC) + "\n"
        + "".join(f"reveal_type({name})\n" for name in PUBLIC)
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(probe)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    revealed = [ln for ln in done.stdout.splitlines() if "Revealed type" in ln]
    assert len(revealed) == len(PUBLIC), done.stdout + done.stderr
    untyped = [ln for ln in revealed if '"Any"' in ln]
    assert not untyped, untyped
    assert done.returncode == 0, done.stdout


def test_one_set_of_terminal_statuses() -> None:
    """The store, the runtime's state and the CLI agree on what is terminal (they once
    disagreed on ``limit_exceeded``)."""
    from typing import get_args

    from tether.cli import run_follow
    from tether.persistence import (
        EXECUTION_STATUSES,
        TERMINAL_STATUSES,
        ExecutionStatus,
        TerminalStatus,
    )
    from tether.runtime.state import ExecutionState

    assert set(get_args(TerminalStatus)) == TERMINAL_STATUSES
    assert run_follow.TERMINAL_STATUSES is TERMINAL_STATUSES
    every = {s for part in get_args(ExecutionStatus) for s in get_args(part) or (part,)}
    assert every > TERMINAL_STATUSES
    assert set(EXECUTION_STATUSES) == every  # what a status filter accepts
    for status in every:
        assert ExecutionState(status=status).is_terminal == (status in TERMINAL_STATUSES)
