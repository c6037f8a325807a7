"""Agent Cards (A2A protocol 0.3): what an engine, and each workflow on it, publishes about
itself at ``/.well-known/agent.json`` and ``/agents/{id}/card``.

Each registered workflow is a skill: its id, its name and description, tags from its labels,
and the input and output modes its JSON-RPC endpoint takes (a data part with the run's input,
or text). The card's ``url`` is that JSON-RPC endpoint; with a token configured the card
declares the bearer scheme the engine enforces.

Example::

    card = agent_card([wf], base_url="http://127.0.0.1:7700", bearer=False)
    card["skills"][0]["id"]        # "research"
    card["url"]                    # "http://127.0.0.1:7700/a2a"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tether.ir.types import Workflow

PROTOCOL_VERSION: Final = "0.3.0"
#: What a skill takes and gives: the run's input as a data part (or text), its result.
INPUT_MODES: Final = ["application/json", "text/plain"]
OUTPUT_MODES: Final = ["application/json"]


def skill_of(wf: Workflow) -> dict[str, Any]:
    """One workflow as an A2A ``AgentSkill``."""
    tags = sorted({"tether", "workflow", *(f"{k}:{v}" for k, v in wf.labels.items())})
    return {
        "id": wf.workflow_id,
        "name": wf.name or wf.workflow_id,
        "description": wf.description or f"Tether workflow {wf.ref}",
        "tags": tags,
        "inputModes": INPUT_MODES,
        "outputModes": OUTPUT_MODES,
    }


def agent_card(
    workflows: Sequence[Workflow],
    *,
    base_url: str,
    bearer: bool,
    name: str = "Tether engine",
    description: str = "Durable workflows and agents served by a Tether engine",
    endpoint: str = "/a2a",
    version: str = "0.1.0",
) -> dict[str, Any]:
    """The card of ``workflows`` served at ``base_url + endpoint`` (JSON-RPC)."""
    card: dict[str, Any] = {
        "protocolVersion": PROTOCOL_VERSION,
        "name": name,
        "description": description,
        "url": base_url.rstrip("/") + endpoint,
        "preferredTransport": "JSONRPC",
        "version": version,
        "provider": {"organization": "Tether", "url": base_url.rstrip("/")},
        "capabilities": {
            "streaming": False, "pushNotifications": False, "stateTransitionHistory": False,
        },
        "defaultInputModes": INPUT_MODES,
        "defaultOutputModes": OUTPUT_MODES,
        "skills": [skill_of(wf) for wf in workflows],
    }  # fmt: skip
    if bearer:
        card["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "TETHER_TOKEN"}
        }
        card["security"] = [{"bearer": []}]
    return card


def workflow_card(wf: Workflow, *, base_url: str, bearer: bool) -> dict[str, Any]:
    """The card of one workflow as an agent of its own, at ``/agents/{id}/a2a``."""
    return agent_card(
        [wf], base_url=base_url, bearer=bearer, name=wf.name or wf.workflow_id,
        description=wf.description or f"Tether workflow {wf.ref}",
        endpoint=f"/agents/{wf.workflow_id}/a2a", version=wf.version,
    )  # fmt: skip
