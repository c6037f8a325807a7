"""Tool calls that need approval, decided by a person through Tether's approvals.

A Pydantic AI tool declared ``requires_approval=True`` (or raising ``ApprovalRequired``) is a
deferred call; inside a workflow body each such call becomes a ``ctx.approval`` named
``{agent}.{tool}`` and the run pauses there until ``rt.approve`` (or the API, or
``tether approve``). Approved, the tool runs once; rejected or timed out, it never runs and the
model is told who said no and why. The decision is journaled, so a replay does not ask again.

Example::

    approvals = ApprovalsByPerson(ctx, "support", timeout="1d")
    await agent.run("refund order 42", capabilities=[HandleDeferredToolCalls(approvals.decide)])
"""

from __future__ import annotations

from typing import Any

from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, RunContext, ToolDenied

from tether.runtime.code_first.context import Decision, WorkflowContext


class ApprovalsByPerson:
    """Answers an agent's approval requests with a person's decisions, one call at a time."""

    def __init__(self, ctx: WorkflowContext, agent_name: str, *, timeout: float | str | None):
        self._ctx = ctx
        self._agent_name = agent_name
        self._timeout = timeout

    async def decide(
        self, run: RunContext[Any], requests: DeferredToolRequests
    ) -> DeferredToolResults | None:
        """The decisions on ``requests.approvals``; external calls are left to the caller."""
        if not requests.approvals:
            return None
        results = DeferredToolResults()
        for call in requests.approvals:  # one at a time: each approval names one call
            decision = await self._ctx.approval(
                f"{self._agent_name}.{call.tool_name}",
                description=f"{call.tool_name}({call.args_as_json_str()})",
                timeout=self._timeout,
            )
            results.approvals[call.tool_call_id] = (
                True if decision.approved else ToolDenied(_denial(decision))
            )
        return results


def _denial(decision: Decision) -> str:
    who = decision.user_id or "nobody"
    said = f"{decision.decision} by {who}" if decision.decision != "timed_out" else "no decision"
    return f"The tool call was not approved ({said})" + (
        f": {decision.comment}" if decision.comment else "."
    )
