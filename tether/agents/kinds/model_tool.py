"""The built-in tool that makes a model call: ``tether.model``. It runs where tools run (the
in-process pool, a ``tether worker``), takes the arguments bound at hand-out and returns the
answer with its facts (tokens, cost, model) for ``node_completed``.

It calls once and never retries: the runtime does (I12). A 429 parks the step
(``ProviderRateLimited`` is a ``RateLimited``); 5xx and timeouts retry; other 4xx fail at once
saying what the provider said.

Example::

    caller = ModelCaller(env=os.environ)
    out = await caller.call(**args)      # {"output": "...", "facts": {"input_tokens": 12, ...}}
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
import msgspec

from tether.agents.kinds.answers import JSON_OR_TEXT, json_or_text
from tether.agents.kinds.mcp_calls import McpCaller
from tether.agents.kinds.model_fallback import MODEL_KEYS, attempts
from tether.agents.providers.client import ClientBase
from tether.agents.providers.costs import CostTable, Price
from tether.agents.providers.errors import ProviderTransient
from tether.agents.providers.resolve import make_client
from tether.agents.providers.types import Message, ModelReply, ModelRequest, ToolSpec, bounded
from tether.errors import NonRetryableError, TetherError
from tether.runtime.tools import Tool

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

#: The name workflows' model calls run under (a worker needs it to run them).
MODEL_TOOL: Final = "tether.model"


class OutputSchemaMismatch(TetherError):
    """The answer is not the JSON its ``output_schema`` asks for; retried (a model may do
    better), the answer kept, bounded."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(f"{message}; the answer was: {bounded(raw, 2000)}")
        self.raw = raw


class ModelCaller:
    """Clients by provider (keys and endpoints from ``env``, read when first needed), one
    concurrency cap per configured model, and the price table."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        costs: CostTable | None = None,
        mcp: McpCaller | None = None,
    ) -> None:
        self._env = env
        self._mcp = mcp
        self._http = http
        self._owns_http = http is None
        self._costs = costs or CostTable()
        self._clients: dict[str, ClientBase] = {}
        self._limiters: dict[tuple[str, int], anyio.CapacityLimiter] = {}

    def tool(self) -> Tool:
        return Tool(
            name=MODEL_TOOL, fn=self.call, params=(), required=frozenset(), is_async=True,
            qualname="tether.agents.kinds.model_tool.ModelCaller.call", accepts_kwargs=True,
            description="Call a model once", inline=False,
        )  # fmt: skip

    async def call(self, **args: Any) -> dict[str, Any]:
        names: dict[str, str] = args.get("tool_names") or {}
        tools = msgspec.convert(args.get("tools", []), tuple[ToolSpec, ...])
        listed: tuple[ToolSpec, ...] = ()
        if args.get("mcp_tools"):  # offered as their servers list them now
            if self._mcp is None:
                raise NonRetryableError("this model caller has no MCP client for MCP tools")
            listed = tuple(await self._mcp.specs(args["mcp_tools"]))
            tools += listed
        request = ModelRequest(
            model=args["provider_model"],
            messages=msgspec.convert(_to_wire(args["messages"], names), tuple[Message, ...]),
            tools=tools,
            temperature=args.get("temperature"),
            max_output_tokens=args.get("max_output_tokens"),
            output_schema=args.get("output_schema"),
        )
        first: ProviderTransient | None = None
        for model in attempts(args):
            try:
                reply = await self._complete(model, request)
            except ProviderTransient as exc:  # the next model, if any (a 429 parks instead)
                first = first or exc
                continue
            answered = {k: v for k, v in args.items() if k not in MODEL_KEYS} | model
            facts = self._facts(reply, answered)
            if listed:  # what the servers offered is not in the hand-out: say which it was
                facts["mcp_tools_sha256"] = _digest(listed)
            if first is not None:
                facts["fallback_from"] = args["model"]
                facts["fallback_error"] = bounded(str(first), 500)
            return {"output": _output(reply, args, names), "facts": facts}
        assert first is not None
        raise first

    async def _complete(self, model: Mapping[str, Any], request: ModelRequest) -> ModelReply:
        request = msgspec.structs.replace(request, model=model["provider_model"])
        client = self._client(model["provider"])
        limit = model.get("max_concurrency")
        if isinstance(limit, int) and limit > 0:
            key = (model["model"], limit)
            limiter = self._limiters.setdefault(key, anyio.CapacityLimiter(limit))
            async with limiter:
                return await client.complete(request)
        return await client.complete(request)

    def _facts(self, reply: ModelReply, args: Mapping[str, Any]) -> dict[str, Any]:
        price = args.get("price")
        if isinstance(price, list) and len(price) == 2:
            table = CostTable({reply.model: Price(float(price[0]), float(price[1]))})
            cost = table.cost(reply.model, reply.usage)
        else:
            cost = self._costs.cost(reply.model, reply.usage)
            if not cost.known:
                cost = self._costs.cost(str(args["provider_model"]), reply.usage)
        return {
            "gen_ai_system": reply.provider,
            "gen_ai_model": reply.model,
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
            "finish_reason": reply.finish_reason,
            "cost_usd": round(cost.cost_usd, 8),
            "cost_known": cost.known,
            "model_duration_ms": reply.duration_ms,
        }

    def _client(self, provider: str) -> ClientBase:
        client = self._clients.get(provider)
        if client is None:
            if self._http is None:
                import httpx

                self._http = httpx.AsyncClient()
            env = os.environ if self._env is None else self._env
            client = self._clients[provider] = make_client(provider, env, http=self._http)
        return client

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None


def _digest(specs: tuple[ToolSpec, ...]) -> str:
    encoded = msgspec.json.encode(specs, order="deterministic")
    return hashlib.sha256(encoded).hexdigest()


def _to_wire(messages: list[Any], names: Mapping[str, str]) -> list[Any]:
    """The transcript with tool names as the model knows them (dots are not allowed)."""
    if not names:
        return messages
    wire = {real: w for w, real in names.items()}
    out = []
    for m in messages:
        if m.get("role") == "assistant" and m.get("tool_calls"):
            calls = [{**c, "name": wire.get(c.get("name"), c.get("name"))} for c in m["tool_calls"]]
            m = {**m, "tool_calls": calls}
        elif m.get("role") == "tool" and m.get("name") in wire:
            m = {**m, "name": wire[m["name"]]}
        out.append(m)
    return out


def _output(reply: ModelReply, args: Mapping[str, Any], names: Mapping[str, str]) -> Any:
    schema = args.get("output_schema")
    if args.get("reply") == "value":
        return _value(reply.text, schema)
    if args.get("reply") == JSON_OR_TEXT:  # a jamjet SDK model node (its own module says why)
        return json_or_text(reply.text)
    calls = [
        {"id": c.id, "name": names.get(c.name, c.name), "arguments": c.arguments}
        | ({"signature": c.signature} if c.signature else {})
        for c in reply.tool_calls
    ]
    out: dict[str, Any] = {"text": reply.text, "tool_calls": calls}
    out["finish_reason"] = reply.finish_reason
    if not calls:
        out["value"] = _value(reply.text, schema)
    return out


def _value(text: str, schema: Any) -> Any:
    """The answer: its text, or the JSON its schema asks for, checked."""
    if not isinstance(schema, dict):
        return text
    body = text.strip()
    if body.startswith("```"):  # a fenced answer: the JSON inside
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise OutputSchemaMismatch(f"the answer is not JSON ({exc})", text) from None
    problem = schema_problem(value, schema, "answer")
    if problem is not None:
        raise OutputSchemaMismatch(problem, text)
    return value


_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
    "number": (int, float), "boolean": (bool,), "null": (type(None),),
}  # fmt: skip


def schema_problem(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    """The first way ``value`` breaks ``schema`` (type, required, properties, items, enum)."""
    expected = schema.get("type")
    if isinstance(expected, str) and expected in _TYPES:
        ok = isinstance(value, _TYPES[expected])
        if expected in ("integer", "number") and isinstance(value, bool):
            ok = False
        if not ok:
            return f"{where} should be {expected}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} should be one of {schema['enum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                return f"{where} lacks the required key {key!r}"
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and isinstance(sub, dict):
                problem = schema_problem(value[key], sub, f"{where}.{key}")
                if problem is not None:
                    return problem
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = schema_problem(item, schema["items"], f"{where}[{i}]")
            if problem is not None:
                return problem
    return None
