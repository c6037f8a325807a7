"""The properties every agent run must have, whatever the model said (checked by
``given_agent_runs`` before the test's own assertions):

- the run reached a terminal state;
- no budget was exceeded (cost, tokens, model calls against ``max_iterations``);
- no tool outside the agent's list (and the workflow's ``allowed_tools``) ever ran;
- every tool call ran after the model call that asked for it was journaled (I12);
- after a crash, no call whose outcome was committed was made again (the runtime checks of
  :mod:`tether.testing.crash_checks` say so, with replay equals live state).

Example::

    problems = agent_problems(run)
    assert not problems, problems
"""

from __future__ import annotations

from tether.ir.types import AgentKind, Budget, Workflow
from tether.runtime.records import NodeCompleted, NodeScheduled
from tether.testing.agent_run import AgentRun

_TERMINAL = {"completed", "failed", "cancelled", "limit_exceeded"}


def agent_problems(run: AgentRun) -> list[str]:
    """What the run did that no agent run may do, one line each."""
    problems = []
    if run.status not in _TERMINAL:
        problems.append(f"the run ended {run.status!r}, not in a terminal state")
    problems += _budget_problems(run, run.budget, "the agent's")
    if run.workflow.budget is not None and run.workflow.budget is not run.budget:
        problems += _budget_problems(run, run.workflow.budget, "the workflow's")
    allowed = allowed_tools(run.workflow)
    problems += [f"tool {t!r} ran, but the agent may not call it" for t in run.tools_run
                 if t not in allowed]  # fmt: skip
    problems += _unjournaled_tool_calls(run)
    return problems


def allowed_tools(workflow: Workflow) -> set[str]:
    """The tools any agent of ``workflow`` may call: its lists, within ``allowed_tools``."""
    listed = {
        t for n in workflow.nodes.values() if isinstance(n.kind, AgentKind) for t in n.kind.tools
    }
    if workflow.allowed_tools is not None:
        listed &= set(workflow.allowed_tools)
    return listed


def _budget_problems(run: AgentRun, budget: Budget, whose: str) -> list[str]:
    out = []
    if budget.max_cost_usd is not None and run.cost_usd > budget.max_cost_usd + 1e-9:
        out.append(f"cost ${run.cost_usd:.6f} is over {whose} budget ${budget.max_cost_usd}")
    if budget.max_tokens is not None and run.tokens > budget.max_tokens:
        out.append(f"{run.tokens} tokens are over {whose} budget of {budget.max_tokens}")
    if budget.max_iterations is not None and run.model_calls > budget.max_iterations:
        out.append(f"{run.model_calls} model calls are over {whose} {budget.max_iterations}")
    return out


def _unjournaled_tool_calls(run: AgentRun) -> list[str]:
    """Tool hand-outs whose call id no model answer journaled before them carried."""
    asked: set[str] = set()
    problems = []
    for entry in run.journal:
        rec = entry.record
        if isinstance(rec, NodeCompleted) and isinstance(rec.output, dict):
            asked |= {
                str(c.get("id")) for c in rec.output.get("tool_calls") or () if isinstance(c, dict)
            }
        elif _tool_call_id(rec) not in (None, *asked):
            assert isinstance(rec, NodeScheduled)
            problems.append(
                f"record {entry.seq}: tool call {rec.input.get('call_id')} "
                f"({rec.input.get('tool')}) was handed out before any journaled model "
                "answer asked for it"
            )
    return problems


def _tool_call_id(rec: object) -> str | None:
    """The call id of an agent's tool call hand-out; None for any other record."""
    if isinstance(rec, NodeScheduled) and rec.input.get("call") == "tool":
        return str(rec.input.get("call_id"))
    return None
