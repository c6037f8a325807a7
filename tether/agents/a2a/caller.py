"""The ``a2a_task`` node's call: its arguments bound at hand-out (the remote agent, the skill,
the input and a fresh ``messageId``, all in ``node_scheduled``) and the built-in tool
``tether.a2a`` that delegates and follows the task to its end.

The call is a work item like a tool's: leased, fenced, timed out and retried by the node's
policy. The agent may be named from state (``$agent_url`` or ``{{ state.agent_url }}``, as
jamjet's ``agent_uri`` does): it is rendered at hand-out, journaled in ``node_scheduled`` like
any input, and a value that is not an http(s) URL fails the node there. The ``messageId`` is
fixed in the journal before the call, so a delegator that restarts and sends the same hand-out
again reaches the same remote task (a Tether delegate starts one run per message id); a retry
(a new attempt) is a new hand-out and a new task.
``node_completed`` records who answered and what it cost: ``a2a_agent`` (the card's name),
``a2a_url``, ``a2a_task_id``, ``a2a_state``, ``cost_usd`` (the task's ``metadata.cost_usd``,
when the remote reports one).

Example::

    args = a2a_args(node, {"query": "tides"})
    out = await A2aCaller(env={}).call(**args)     # {"output": {...}, "facts": {...}}
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import anyio

from tether.agents.a2a.client import (
    TERMINAL_STATES,
    WAITING_STATES,
    A2aClient,
    A2aRefused,
    A2aUnreachable,
)
from tether.agents.state_inputs import bind_input
from tether.ir.errors import ValidationIssue
from tether.ir.templates import TemplateError, parse_template
from tether.ir.types import A2aTaskKind, Node, Workflow
from tether.runtime.tools import Tool

A2A_TOOL: Final = "tether.a2a"
TOKEN_VARIABLE: Final = "TETHER_A2A_TOKEN"
#: Between two reads of a running task: from the first to the last.
_POLL_FIRST, _POLL_MAX = 0.05, 1.0


def a2a_args(node: Node, data: Mapping[str, Any]) -> dict[str, Any]:
    kind = node.kind
    assert isinstance(kind, A2aTaskKind)
    mapping = node.input or kind.input_mapping
    if mapping:
        task_input = {name: bind_input(source, data) for name, source in mapping.items()}
    else:  # the run's state, less the engine's own keys
        task_input = {k: v for k, v in data.items() if not k.startswith("__")}
    args: dict[str, Any] = {
        "agent": agent_url(kind.remote_agent, data, node.id),
        "input": task_input,
        "message_id": f"tether-{uuid.uuid4().hex}",
    }
    if kind.skill:
        args["skill"] = kind.skill
    timeout = kind.timeout_secs or node.node_timeout_secs
    if timeout:
        args["timeout_secs"] = float(timeout)
    return args


def is_templated(remote_agent: str) -> bool:
    """Whether the agent is named from state (``$path`` or ``{{ state.x }}``), so its URL is
    known only when the node is handed out."""
    return "{{" in remote_agent or (
        remote_agent.startswith("$") and not remote_agent.startswith("${")
    )


def agent_url(remote_agent: str, data: Mapping[str, Any], node_id: str) -> str:
    """The remote agent's URL: ``remote_agent`` itself, or rendered from state at hand-out
    (where it is journaled with the rest of the call). Raises ValueError when what state
    gives is not an http(s) URL, LookupError when state lacks it."""
    if not is_templated(remote_agent):
        return remote_agent
    url = bind_input(remote_agent, data)
    if not isinstance(url, str) or not _is_http_url(url):
        raise ValueError(
            f"node {node_id!r}: the remote agent {remote_agent!r} must give an http(s) URL, "
            f"got {url!r}"
        )
    return url


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_a2a(wf: Workflow) -> list[ValidationIssue]:
    issues = []
    for node in wf.nodes.values():
        kind = node.kind
        if not isinstance(kind, A2aTaskKind):
            continue
        where = f"nodes.{node.id}.kind.remote_agent"
        if is_templated(kind.remote_agent):
            if "{{" in kind.remote_agent:  # $path needs no parse; a bad template is refused now
                try:
                    parse_template(kind.remote_agent)
                except TemplateError as exc:
                    issues.append(ValidationIssue(where, f"node {node.id!r}: {exc}"))
        elif not _is_http_url(kind.remote_agent):
            issues.append(
                ValidationIssue(
                    where,
                    f"node {node.id!r}: remote_agent must be the agent's http(s) URL (its base "
                    f"URL or its card's), or name it from state ($path or {{{{ state.x }}}}), "
                    f"got {kind.remote_agent!r}",
                )
            )
    return issues


class A2aCaller:
    """Delegates ``a2a_task`` calls; ``env`` gives ``TETHER_A2A_TOKEN`` (read where the call
    runs, never journaled)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._client: A2aClient | None = None

    def tool(self) -> Tool:
        return Tool(
            name=A2A_TOOL, fn=self.call, params=(), required=frozenset(), is_async=True,
            qualname="tether.agents.a2a.caller.A2aCaller.call", accepts_kwargs=True,
            description="Delegate a task to a remote A2A agent", inline=False,
        )  # fmt: skip

    async def call(
        self,
        agent: str,
        input: dict[str, Any],
        message_id: str,
        skill: str | None = None,
        timeout_secs: float | None = None,
    ) -> dict[str, Any]:
        if self._client is None:
            self._client = A2aClient(token=self._env.get(TOKEN_VARIABLE))
        client = self._client
        card = await client.card(agent)
        endpoint = str(card["url"])
        message: dict[str, Any] = {
            "kind": "message", "role": "user", "messageId": message_id,
            "parts": [{"kind": "data", "data": input}],
        }  # fmt: skip
        params: dict[str, Any] = {"message": message, "configuration": {"blocking": False}}
        if skill:
            params["metadata"] = {"skill": skill}
        with anyio.fail_after(timeout_secs):  # None: the node's own timeout only
            task = await client.rpc(endpoint, "message/send", params)
            task = await _follow(client, endpoint, task)
        return _outcome(card, endpoint, task, message_id)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def _follow(client: A2aClient, endpoint: str, task: Any) -> dict[str, Any]:
    if isinstance(task, dict) and task.get("kind") == "message":  # answered at once
        return {"kind": "task", "id": "", "status": {"state": "completed"}, "artifacts": [task]}
    delay = _POLL_FIRST
    while True:
        if not isinstance(task, dict) or not isinstance(task.get("status"), dict):
            raise A2aRefused(f"A2A {endpoint}: the answer is not a Task")
        state = task["status"].get("state")
        if state in TERMINAL_STATES or state in WAITING_STATES:
            return task
        await anyio.sleep(delay)  # the remote works; read it again
        delay = min(delay * 2, _POLL_MAX)
        task = await client.rpc(endpoint, "tasks/get", {"id": task.get("id")})


def _outcome(
    card: Mapping[str, Any], endpoint: str, task: dict[str, Any], message_id: str
) -> dict[str, Any]:
    state = task["status"].get("state")
    name = str(card.get("name", endpoint))
    facts: dict[str, Any] = {
        "a2a_agent": name, "a2a_url": endpoint, "a2a_task_id": task.get("id"),
        "a2a_message_id": message_id, "a2a_state": state,
    }  # fmt: skip
    meta = task.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("cost_usd"), int | float):
        facts["cost_usd"] = float(meta["cost_usd"])
    if state != "completed":
        said = _texts(task["status"].get("message"))
        raise A2aRefused(
            f"remote agent {name!r} task {task.get('id')!r} ended {state}"
            + (f": {said}" if said else "")
        )
    return {"output": _result(task), "facts": facts}


def _result(task: Mapping[str, Any]) -> Any:
    data: dict[str, Any] = {}
    texts: list[str] = []
    for artifact in task.get("artifacts") or []:
        for part in artifact.get("parts") or [] if isinstance(artifact, dict) else []:
            if (
                isinstance(part, dict)
                and part.get("kind") == "data"
                and isinstance(part.get("data"), dict)
            ):
                data.update(part["data"])
            elif isinstance(part, dict) and part.get("kind") == "text":
                texts.append(str(part.get("text", "")))
    if data:
        return data
    return "\n".join(texts)


def _texts(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    parts = message.get("parts") or []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))[:500]


__all__ = [
    "A2A_TOOL",
    "A2aCaller",
    "A2aRefused",
    "A2aUnreachable",
    "a2a_args",
    "agent_url",
    "check_a2a",
]
