"""Strategy agents as Tether YAML, shared by the strategy tests and their crash child."""

from __future__ import annotations

from typing import Any

from tether.ir import compile_yaml_text
from tether.ir.types import Workflow

#: A model whose every output token costs 175.78125 USD per million, and input nothing: a
#: call projects 1024 output tokens, 0.18 USD, and 1000 output tokens cost 0.17578125 USD.
PRICEY = {"provider": "openai", "model": "gpt-4o-mini", "cost": {"input": 0, "output": 175.78125}}


def strategy_yaml(strategy: str, **agent: Any) -> str:
    """A workflow whose one node ``think`` is a strategy agent, then ``done``."""
    import json

    spec = {
        "type": "agent",
        "strategy": strategy,
        "model": "gpt-4o-mini",
        "goal": f"[{strategy}] Answer about {{{{ state.topic }}}}",
        "next": "done",
        **agent,
    }
    doc = {
        "workflow": {"id": f"strat-{strategy}", "version": "1"},
        "models": {"pricey": PRICEY},
        "nodes": {"think": spec, "done": {"type": "end"}},
    }  # fmt: skip
    return json.dumps(doc)  # JSON is YAML


def strategy_flow(strategy: str, **agent: Any) -> Workflow:
    return compile_yaml_text(strategy_yaml(strategy, **agent), f"{strategy}.yaml")
