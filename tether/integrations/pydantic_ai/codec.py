"""What crosses a durable call of a Pydantic AI agent, as journal data (JSON-shaped values).

A step's arguments and result are journaled as msgpack, and on replay its arguments are compared
with the journal's, so each value is reduced to plain JSON data through Pydantic AI's own type
adapters (messages, request parameters, run context, tool results) and rebuilt from it on the
other side of the call.

Example::

    payload = dump_messages(messages)          # list of dicts, journaled
    assert load_messages(payload) == messages
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai.durable_exec import CallToolResult, DurabilityEngineSpec, DurableRunContext
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext
from pydantic_core import to_jsonable_python

#: How Pydantic AI's errors and guards word Tether: a step inside a workflow.
TETHER_SPEC = DurabilityEngineSpec(
    engine_name="Tether",
    durable_unit_noun="step",
    durable_container_noun="workflow",
    wrapped_toolset_kinds=frozenset({"function", "mcp"}),
    # An MCP server is entered by each step that uses it, never by the run (mcp_toolset.py).
    toolset_lifecycles={"function": "enter-always", "mcp": "enter-never"},
)

#: A capability named after its object (``<handle_deferred_tool_calls:ce233e>``).
_PER_OBJECT = re.compile(r"^<[^<>]*:[0-9a-f]+>$")
_PARAMETERS: TypeAdapter[ModelRequestParameters] = TypeAdapter(ModelRequestParameters)
_TOOL_RESULT: TypeAdapter[CallToolResult] = TypeAdapter(CallToolResult)


def dump_messages(messages: list[ModelMessage]) -> list[Any]:
    return list(ModelMessagesTypeAdapter.dump_python(messages, mode="json"))


def load_messages(payload: list[Any]) -> list[ModelMessage]:
    return ModelMessagesTypeAdapter.validate_python(payload)


def dump_response(response: ModelResponse) -> dict[str, Any]:
    [dumped] = dump_messages([response])
    return dict(dumped)


def load_response(payload: dict[str, Any]) -> ModelResponse:
    [message] = load_messages([payload])
    if not isinstance(message, ModelResponse):
        raise TypeError(f"a model request step returned a {message.kind}, not a response")
    return message


def dump_parameters(parameters: ModelRequestParameters) -> dict[str, Any]:
    return dict(_PARAMETERS.dump_python(parameters, mode="json"))


def load_parameters(payload: dict[str, Any]) -> ModelRequestParameters:
    return _PARAMETERS.validate_python(payload)


def dump_settings(settings: ModelSettings | None) -> dict[str, Any] | None:
    return None if settings is None else dict(to_jsonable_python(settings))


def load_settings(payload: dict[str, Any] | None) -> ModelSettings | None:
    return None if payload is None else ModelSettings(**payload)  # type: ignore[typeddict-item]


def dump_tool_result(result: CallToolResult) -> Any:
    return _TOOL_RESULT.dump_python(result, mode="json")


def load_tool_result(payload: Any) -> CallToolResult:
    return _TOOL_RESULT.validate_python(payload)


def dump_run_context(ctx: RunContext[Any]) -> dict[str, Any]:
    """The run context a tool gets, without its deps (see :class:`DepsCodec`).

    A capability without an id is named after the object (``<name:1f2e3d>``): another process,
    or a replay, names it differently, so such names are left out (a replay compares a step's
    arguments with the journal's, I8). Sets (the run's tool names) are sorted: their order
    follows string hashing, which differs between processes."""
    out = dict(to_jsonable_python(_sorted_sets(DurableRunContext.serialize_run_context(ctx))))
    active = out.get("active_capability_ids")
    if isinstance(active, list):
        out["active_capability_ids"] = [c for c in active if not _PER_OBJECT.match(str(c))]
    return out


def _sorted_sets(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted((_sorted_sets(v) for v in value), key=str)
    if isinstance(value, dict):
        return {k: _sorted_sets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sorted_sets(v) for v in value]
    return value


class DepsCodec:
    """An agent's ``deps`` as JSON data, by the agent's ``deps_type`` (none when it is None)."""

    def __init__(self, deps_type: Any) -> None:
        self._none = deps_type is None or deps_type is type(None)
        self._adapter: TypeAdapter[Any] | None = None if self._none else TypeAdapter(deps_type)

    def dump(self, deps: Any) -> Any:
        if self._adapter is None or deps is None:
            return None
        return self._adapter.dump_python(deps, mode="json")

    def load(self, payload: Any) -> Any:
        if self._adapter is None or payload is None:
            return None
        return self._adapter.validate_python(payload)
