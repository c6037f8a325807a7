"""An agent's property test: whatever the model answers (tool calls with good and bad
arguments, a tool it may not call, malformed JSON, 429s, 500s, timeouts) and wherever the
process dies, the run ends, stays within budget and never runs a tool it is not allowed.

    python -m pytest examples/testing -q
"""

from pathlib import Path

import pytest
from shop_tools import delete_db, search

from tether.testing import strategies as tst

AGENT = Path(__file__).with_name("shop_agent.yaml")


@pytest.mark.tether(tools=[search, delete_db], workflows=[AGENT])
@tst.given_agent_runs(
    model=tst.model_answers(tools=[search, "delete_db"], malformed=0.05, rate_limited=0.1),
    input={"question": "Do you have red shoes?"},
    max_examples=50,
)
async def test_agent_invariants(agent_run):
    # Checked already for every run: a terminal state, budgets, the allow-list, every tool
    # call journaled after the answer that asked for it, nothing committed sent again.
    assert agent_run.status in {"completed", "failed", "limit_exceeded"}
    assert "delete_db" not in agent_run.tools_run
    assert agent_run.cost_usd <= agent_run.budget.max_cost_usd
