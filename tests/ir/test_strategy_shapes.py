"""Tether's strategy compiler gives the `jamjet` SDK's shapes: the same nodes (ids, kinds,
prompts, labels, state keys, retry policy), edges and metadata for every strategy, config and
limit, so a run reads the same whichever side compiled it; a YAML strategy agent expands
into exactly what ``workflow_from_ir`` makes of the SDK's agent-first YAML."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jamjet.compiler.strategies import StrategyLimits as SdkLimits
from jamjet.compiler.strategies import compile_strategy as sdk_compile
from jamjet.workflow.ir_compiler import compile_yaml as sdk_compile_yaml

from tether.ir import WorkflowSyntaxError, compile_yaml_text, workflow_from_ir
from tether.ir.strategies import STRATEGIES, StrategyLimits, compile_strategy
from tether.runtime.graph import Graph

names = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8)
configs = st.fixed_dictionaries(
    {},
    optional={
        "pass_threshold": st.sampled_from([0.5, 0.8, 0.95]),
        "max_rounds": st.integers(1, 5),
        "num_agents": st.integers(1, 4),
        "critic_model": names,
        "judge_model": names,
        "verifier_model": names,
    },
)


@settings(max_examples=150, deadline=None)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    config=configs,
    tools=st.lists(names, max_size=3),
    iterations=st.integers(1, 6),
    goal=st.text(max_size=40),
)
def test_every_strategy_compiles_to_the_sdks_shape(
    strategy: str, config: dict[str, Any], tools: list[str], iterations: int, goal: str
) -> None:
    ours = compile_strategy(
        strategy, config, tools, "gpt-4o-mini", StrategyLimits(iterations, 0.5, 60), goal, "a"
    )
    sdks = sdk_compile(
        strategy, config, tools, "gpt-4o-mini", SdkLimits(iterations, 0.5, 60), goal, "a"
    )
    assert ours == sdks
    assert list(ours["nodes"]) == list(sdks["nodes"])  # node order too


AGENT_FIRST = """
agent:
  id: researcher
  strategy: {strategy}
  goal: "Research {{{{ state.topic }}}}"
  model: gpt-4o-mini
  tools: [search]
  limits: {{max_iterations: 3, max_cost_usd: 0.5, timeout_seconds: 90}}
"""

TETHER_YAML = """
workflow: {{id: researcher, version: "0.1.0"}}
nodes:
  researcher:
    type: agent
    strategy: {strategy}
    goal: "Research {{{{ state.topic }}}}"
    model: gpt-4o-mini
    tools: [search]
    max_iterations: 3
    max_cost_usd: 0.5
    timeout: 90s
"""


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_yaml_strategy_agent_is_the_sdks_agent_first_workflow(strategy: str) -> None:
    sdk = workflow_from_ir(sdk_compile_yaml(AGENT_FIRST.format(strategy=strategy)))
    ours = compile_yaml_text(TETHER_YAML.format(strategy=strategy), "agent.yaml")
    assert ours.nodes == sdk.nodes
    assert ours.edges == sdk.edges
    assert ours.start_node == sdk.start_node
    assert (ours.cost_limit_usd, ours.timeouts.workflow_timeout) == (0.5, 90.0)
    assert (sdk.cost_limit_usd, sdk.timeouts.workflow_timeout) == (0.5, 90.0)
    assert ours.retry_policies == sdk.retry_policies
    assert ours.labels == sdk.labels
    # The runtime reads both the same way.
    assert Graph(ours).strategy == Graph(sdk).strategy
    assert Graph(ours).strategy is not None


def test_an_agent_compile_carries_its_timeout_into_the_workflow() -> None:
    from jamjet import Agent, tool

    @tool
    async def search(q: str) -> str:
        """Search."""
        return q

    agent = Agent("a", model="gpt-4o-mini", tools=[search], strategy="critic", timeout_seconds=42)
    assert workflow_from_ir(agent.compile()).timeouts.workflow_timeout == 42.0


def test_a_strategy_agent_inside_a_workflow_is_routed_to_and_from() -> None:
    wf = compile_yaml_text(
        """
workflow: {id: w, version: "1", start: research}
nodes:
  research: {type: agent, strategy: react, model: m, goal: g, max_iterations: 1, next: check}
  check:
    type: branch
    cases: [{when: "state.result == 'again'", to: research}]
    default: done
  done: {type: end}
""",
        "w.yaml",
    )
    assert wf.start_node == "__think_0__"
    assert ("__finalize__", "check") in [(e.from_, e.to) for e in wf.edges]
    kind = wf.nodes["check"].kind
    assert [c.to for c in kind.cases] == ["__think_0__"]  # type: ignore[union-attr]
    assert "research" not in wf.nodes


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("{type: agent, strategy: ponder, model: m, goal: g}",
         "agent.yaml:4:19: node 'a': unknown strategy 'ponder' (known: consensus, critic, debate"),
        ("{type: agent, strategy: react, model: m}",
         "agent.yaml:3:3: node 'a': a strategy agent needs a 'goal' (or 'instructions')"),
        ("{type: agent, strategy: react, model: m, goal: g, max_iterations: 0}",
         "node 'a': max_iterations must be a whole number from 1 to 100, got 0"),
        ("{type: agent, strategy: react, model: m, goal: g, max_cost_usd: -1}",
         "node 'a': max_cost_usd must be a positive number, got -1"),
        ("{type: agent, strategy: react, model: m, goal: g, timeout: soon}",
         "node 'a': timeout:"),
        ("{type: agent, strategy: react, model: m, goal: g, budget: {}}",
         "node 'a': 'budget' is not a key of a strategy agent"),
    ],
)  # fmt: skip
def test_a_bad_strategy_agent_is_refused_with_its_line(node: str, message: str) -> None:
    text = f'workflow: {{id: w, version: "1"}}\nnodes:\n  a:\n    {node}\n'
    yaml.safe_load(text)  # the test's YAML itself is well formed
    with pytest.raises(WorkflowSyntaxError) as caught:
        compile_yaml_text(text, "agent.yaml")
    assert message in str(caught.value)


def test_two_strategy_agents_in_one_workflow_are_refused_naming_both() -> None:
    text = """
workflow: {id: w, version: "1"}
nodes:
  first: {type: agent, strategy: react, model: m, goal: g, next: second}
  second: {type: agent, strategy: critic, model: m, goal: g}
"""
    both = r"one strategy agent per workflow \(node 'first'"
    with pytest.raises(WorkflowSyntaxError, match=both):
        compile_yaml_text(text, "w.yaml")
