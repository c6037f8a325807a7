"""Run an agent workflow against the fake model and say what happened, from the journal and
from what the executor actually started.

Example::

    async with RuntimeUnderTest(TetherOptions(tools=[search], model_env=model.env()),
                                tmp_path, clock) as rt:
        model.play(answers)
        await rt.begin(cut=12)                             # or no cut
        run = await run_agent(rt, workflow, {"q": "..."}, clock)
        assert "delete_db" not in run.tools_run
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from tether.errors import ExecutionBroken
from tether.ir.types import AgentKind, Budget, Workflow
from tether.runtime.executor import work_item_id
from tether.runtime.records import JournalEntry, NodeCompleted, NodeScheduled
from tether.runtime.state import ExecutionState
from tether.testing.clock import VirtualClock
from tether.testing.runtime_under_test import CrashRecord, RuntimeUnderTest
from tether.testing.time_driver import drive_time


@dataclass
class AgentRun:
    """One agent run, as a property test sees it.

    ``tools_run``: the tool calls the executor started, by tool name, in order (a tool that
    ran twice, as an in-flight call after a crash may, is listed twice). ``budget``: the
    agent's own budget (its first agent node's), else the workflow's, else no limits.
    """

    execution_id: str
    status: str
    error: str | None
    state: ExecutionState
    journal: list[JournalEntry]
    workflow: Workflow
    tools_run: list[str] = field(default_factory=list)
    #: The loop's model calls (a retried call counts once: iterations, as budgets count them).
    model_calls: int = 0
    cost_usd: float = 0.0
    tokens: int = 0
    budget: Budget = field(default_factory=Budget)
    crash: CrashRecord | None = None
    #: Records of kinds a property may look for: ``policy_violation``, ``budget_exceeded``...
    record_types: list[str] = field(default_factory=list)
    #: What the properties every agent run has found broken (empty when they held).
    problems: list[str] = field(default_factory=list)
    #: The model's answers this run was played (hypothesis's draw).
    answers: list[Any] = field(default_factory=list)


async def run_agent(
    rt: RuntimeUnderTest,
    workflow: Workflow,
    input: Mapping[str, Any],
    clock: VirtualClock,
    *,
    timeout: float = 20.0,
) -> AgentRun:
    """Start ``workflow`` on ``rt``, let virtual time run its backoffs, wait for its end."""
    run = await rt.start(workflow, input)
    with anyio.fail_after(timeout):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive_time, rt, clock, run.id)
            try:
                state = await rt.wait(run.id)
            except ExecutionBroken:
                state = await rt.state(run.id)
            tg.cancel_scope.cancel()
    journal = await rt.journal(run.id)
    return describe_run(rt, workflow, run.id, state, journal)


def describe_run(
    rt: RuntimeUnderTest,
    workflow: Workflow,
    execution_id: str,
    state: ExecutionState,
    journal: list[JournalEntry],
) -> AgentRun:
    """An :class:`AgentRun` from a finished run's journal and its lives' executors."""
    scheduled = {
        work_item_id(execution_id, e.record.node_id, e.record.dispatch): e.record.input
        for e in journal
        if isinstance(e.record, NodeScheduled)
    }
    tools_run = [
        str(scheduled[item].get("tool"))
        for life in rt.lives
        for item in life.executor.started
        for _ in range(life.executor.started[item])
        if scheduled.get(item, {}).get("call") == "tool"
    ]
    facts = [e.record.facts for e in journal if isinstance(e.record, NodeCompleted)]
    return AgentRun(
        execution_id=execution_id,
        status=state.status,
        error=state.error,
        state=state,
        journal=journal,
        workflow=workflow,
        tools_run=tools_run,
        model_calls=len(_model_calls(journal)),
        cost_usd=sum(float(f.get("cost_usd") or 0.0) for f in facts),
        tokens=sum(
            int(f.get("input_tokens") or 0) + int(f.get("output_tokens") or 0) for f in facts
        ),
        budget=agent_budget(workflow),
        crash=rt.crash,
        record_types=[e.type for e in journal],
    )


def _model_calls(journal: list[JournalEntry]) -> list[int]:
    """The seqs of the loop's model calls: first attempts only (a retry of a call that failed
    is the same call again, not another iteration)."""
    return [
        e.seq
        for e in journal
        if isinstance(e.record, NodeScheduled)
        and e.record.input.get("call") == "model"
        and e.record.attempt == 1
    ]


def agent_budget(workflow: Workflow) -> Budget:
    """The first agent node's budget, else the workflow's, else a budget with no limits."""
    for node in workflow.nodes.values():
        if isinstance(node.kind, AgentKind) and node.kind.budget is not None:
            return node.kind.budget
    return workflow.budget or Budget()
