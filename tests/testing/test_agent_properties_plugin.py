"""``given_agent_runs`` as a user meets it, in an inner pytest session: an agent whose
allow-list holds passes whatever the drawn model answers; the same agent on a runtime whose
allow-list check is planted broken fails, hypothesis naming the answers that showed it."""

from __future__ import annotations

import pytest

PLUGIN = ("-p", "tether.testing.pytest_plugin", "-p", "no:cacheprovider")

AGENT = '''
import pytest
from tether import tool
from tether.ir import compile_yaml_text
from tether.testing import strategies as tst

@tool
async def search(query: str) -> list[str]:
    """Search."""
    return [query]

@tool
async def delete_db() -> str:
    """Never allowed."""
    return "gone"

AGENT = compile_yaml_text("""
workflow: {id: shop, version: "1"}
models:
  smart: {provider: openai, model: gpt-4o-mini}
nodes:
  assist:
    type: agent
    model: smart
    prompt: "{{ state.question }}"
    tools: [search]
    budget: {max_cost_usd: 0.01, max_iterations: 4}
    output_key: answer
""", "agent.yaml")
'''

TEST = """
@pytest.mark.tether(tools=[search, delete_db], workflows=[AGENT], storage="memory")
@tst.given_agent_runs(model=tst.model_answers(tools=[search, "delete_db"], malformed=0.05,
                                               rate_limited=0.1), input={"question": "q"},
                      max_examples=EXAMPLES)
async def test_agent(agent_run):
    assert agent_run.status in {"completed", "failed", "limit_exceeded"}
    assert agent_run.cost_usd <= agent_run.budget.max_cost_usd
"""


def test_an_agent_whose_allow_list_holds_passes_whatever_the_model_says(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_agent=AGENT + TEST.replace("EXAMPLES", "30"))
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_a_broken_allow_list_is_caught_with_the_answers_that_showed_it(
    pytester: pytest.Pytester,
) -> None:
    broken = '''
from tether.agents.kinds import AgentKinds

@pytest.fixture(autouse=True)
def allow_list_ignored(monkeypatch):
    """The fault: the agent's policy check lets every tool through."""
    monkeypatch.setattr(AgentKinds, "refusal", lambda self, wf, node, call: None)
'''
    # 100 drawn runs: at 30 a session could draw no call of delete_db at all, and the planted
    # fault went unseen (once in ~60 sessions here, in a full suite on a loaded machine).
    pytester.makepyfile(test_agent=AGENT + broken + TEST.replace("EXAMPLES", "100"))
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "tool 'delete_db' ran, but the agent may not call it" in text
    assert "the model answered: [FakeReply(" in text and "name='delete_db'" in text
