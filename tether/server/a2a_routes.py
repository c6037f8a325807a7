"""A2A over the engine's API: Agent Cards and the JSON-RPC endpoint (protocol 0.3).

- ``GET /.well-known/agent.json`` (and ``agent-card.json``, the newer name): the engine's card,
  a skill per registered workflow, its ``url`` the endpoint ``POST /a2a``.
- ``GET /agents``: every workflow as an agent (id, name, description, card URL), what
  ``tether agents list`` and ``jamjet agents list`` print; ``GET /agents/{id}`` one of them
  with its card; ``GET /agents/{id}/card``: its own card, its ``url`` ``POST /agents/{id}/a2a``.
- ``POST /a2a`` and ``POST /agents/{id}/a2a``: JSON-RPC ``message/send``, ``tasks/get``,
  ``tasks/cancel`` (:mod:`tether.agents.a2a.tasks`); an error is a JSON-RPC error object.

All of them sit behind the bearer token like every route but ``/health``; a card says so
(``securitySchemes``) when a token is configured.

Example::

    GET /agents/research/card
    -> {"protocolVersion": "0.3.0", "name": "research",
        "url": "http://127.0.0.1:7700/agents/research/a2a", ...}
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from tether.agents.a2a.card import agent_card, workflow_card
from tether.agents.a2a.tasks import A2aTasks
from tether.errors import WorkflowNotFound
from tether.ir.types import Workflow
from tether.runtime.runtime import Runtime
from tether.server.api_keys import ApiKeys


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def _bearer(request: Request[Any, Any, Any]) -> bool:
    keys: ApiKeys = request.app.state.api_keys
    return keys.required


async def _latest(rt: Runtime) -> list[Workflow]:
    ids = sorted({row.workflow_id for row in await rt.list_workflows()})
    return [await rt.workflow(workflow_id) for workflow_id in ids]


async def _one(rt: Runtime, agent_id: str) -> Workflow:
    try:
        return await rt.workflow(agent_id)
    except WorkflowNotFound:
        raise NotFoundException(f"no agent {agent_id!r} on this engine") from None


@get(["/.well-known/agent.json", "/.well-known/agent-card.json"])
async def engine_card(request: Request[Any, Any, Any]) -> dict[str, Any]:
    workflows = await _latest(_rt(request))
    return agent_card(workflows, base_url=_base(request), bearer=_bearer(request))


@get("/agents")
async def list_agents(request: Request[Any, Any, Any]) -> dict[str, Any]:
    base = _base(request)
    return {
        "agents": [
            {
                "id": wf.workflow_id, "name": wf.name or wf.workflow_id, "version": wf.version,
                "description": wf.description or "", "status": "active",
                "card_url": f"{base}/agents/{wf.workflow_id}/card",
            }
            for wf in await _latest(_rt(request))
        ]
    }  # fmt: skip


@get("/agents/{agent_id:str}")
async def get_agent(request: Request[Any, Any, Any], agent_id: FromPath[str]) -> dict[str, Any]:
    wf = await _one(_rt(request), agent_id)
    card = workflow_card(wf, base_url=_base(request), bearer=_bearer(request))
    return {"id": wf.workflow_id, "status": "active", "card": card}


@get("/agents/{agent_id:str}/card")
async def get_agent_card(
    request: Request[Any, Any, Any], agent_id: FromPath[str]
) -> dict[str, Any]:
    wf = await _one(_rt(request), agent_id)
    return workflow_card(wf, base_url=_base(request), bearer=_bearer(request))


@post("/a2a", status_code=200)
async def engine_rpc(request: Request[Any, Any, Any], data: JSONBody[Any]) -> dict[str, Any]:
    return await A2aTasks(_rt(request)).handle(data)


@post("/agents/{agent_id:str}/a2a", status_code=200)
async def agent_rpc(
    request: Request[Any, Any, Any], agent_id: FromPath[str], data: JSONBody[Any]
) -> dict[str, Any]:
    await _one(_rt(request), agent_id)
    return await A2aTasks(_rt(request)).handle(data, skill=agent_id)


ROUTES = [engine_card, list_agents, get_agent, get_agent_card, engine_rpc, agent_rpc]
