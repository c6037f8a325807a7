"""What makes a Pydantic AI run replay the same way inside a Tether workflow body.

A body is replayed from the top after a restart, and each step's arguments are compared with
the journal's, so the run must stamp the same times and ids and take the same paths each time:

- message timestamps come from a durable clock: the run's start (``ctx.now()``, journaled once)
  moved forward to each model response's own (journaled) timestamp;
- the run id is a journaled ``ctx.uuid()`` (the caller's, when given);
- the agent's own waits (retry backoffs) are durable timers (``ctx.sleep``);
- synchronous callbacks run inline (the body's loop has no threads) and parallel tool calls
  report in call order, not completion order.

Example::

    with durable_run(ctx, start=ctx.now()):
        await agent.run("hi", run_id=ctx.uuid())
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from pydantic_ai import Agent
from pydantic_ai._agent_graph import set_agent_graph_sleep
from pydantic_ai._utils import disable_threads, override_now_utc

from tether.runtime.code_first.context import WorkflowContext

_now: ContextVar[datetime | None] = ContextVar("tether_pydantic_ai_now", default=None)


def _read_clock() -> datetime:
    now = _now.get()
    if now is None:  # only installed with a start time; kept loud if that ever changes
        raise RuntimeError("the durable clock of a Tether agent run was read outside its run")
    return now


def advance_clock(to: datetime) -> None:
    """Move this run's clock to a journaled time (a model response's), never backwards."""
    now = _now.get()
    if now is not None and to > now:
        _now.set(to)


@contextmanager
def durable_run(ctx: WorkflowContext, *, start: datetime) -> Generator[None]:
    """The scope of one agent run inside a workflow body (see the module's docstring)."""
    token = _now.set(start)
    try:
        with (
            override_now_utc(_read_clock),
            disable_threads(),
            set_agent_graph_sleep(ctx.sleep),
            Agent.parallel_tool_call_execution_mode("parallel_ordered_events"),
        ):
            yield
    finally:
        _now.reset(token)
