"""A model call's arguments, bound from the IR and state when it is handed out: what is sent
(the rendered messages, the tools offered, the model as configured) is in the journal before it
is sent (I12), with its projected tokens and cost for the budget check made before it.

Example::

    args = model_node_args(wf, node, state_data, costs)
    args["messages"]             # [{"role": "system", ...}, {"role": "user", "content": "..."}]
    args["projected_cost_usd"]   # from the messages' length and the output cap
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from tether.agents.kinds.answers import JSON_OR_TEXT
from tether.agents.providers.config import ModelSpec, parse_models
from tether.agents.providers.costs import CostTable
from tether.agents.providers.resolve import provider_for
from tether.agents.providers.types import ToolSpec
from tether.ir.eval_spec import FEEDBACK_KEY
from tether.ir.templates import parse_template
from tether.ir.types import AgentKind, ModelKind, Node, Workflow

#: Output tokens projected for a call with no ``max_tokens`` (a budget check assumes this).
PROJECTED_OUTPUT_TOKENS: Final = 1024
#: Characters per token when projecting a prompt's tokens (a common rule of thumb).
_CHARS_PER_TOKEN: Final = 4
_json = msgspec.json.Encoder()


def model_spec(wf: Workflow, ref: str) -> ModelSpec:
    """The model ``ref`` names: an alias of ``wf.models``, else a bare model name resolved by
    its family. Raises ModelConfigError (a ValueError) naming what is wrong."""
    config = parse_models(wf.models) if wf.models else None
    found = config.get(ref) if config is not None else None
    if found is not None:
        return found
    return ModelSpec(ref, provider_for(ref), ref)


def render(text: str | None, data: Mapping[str, Any]) -> str:
    """A prompt template rendered over state (the run's input is in state too)."""
    if not text:
        return ""
    return parse_template(text).render(data, data)


def model_node_args(
    wf: Workflow, node: Node, data: Mapping[str, Any], costs: CostTable
) -> dict[str, Any]:
    kind = node.kind
    assert isinstance(kind, ModelKind)
    messages: list[dict[str, Any]] = []
    system = render(kind.system_prompt, data)
    if system:
        messages.append({"role": "system", "content": system})
    prompt = kind.prompt if kind.prompt is not None else kind.prompt_ref
    rendered = with_feedback(render(prompt, data), (prompt, kind.system_prompt), data)
    messages.append({"role": "user", "content": rendered})
    schema = kind.output_schema if isinstance(kind.output_schema, dict) else None
    # A string output_schema is the jamjet SDK's state key: its answer lands as JSON or text.
    reply = JSON_OR_TEXT if isinstance(kind.output_schema, str) and kind.output_schema else "value"
    return call_args(
        model_spec(wf, kind.model_ref), messages, (), kind.temperature, kind.max_tokens,
        schema, reply, costs,
    )  # fmt: skip


def first_messages(node: Node, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An agent's transcript before its first call: its instructions and its prompt (the
    run's input as JSON when it has none)."""
    kind = node.kind
    assert isinstance(kind, AgentKind)
    messages: list[dict[str, Any]] = []
    instructions = render(kind.instructions, data)
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if kind.prompt is not None:
        prompt = with_feedback(render(kind.prompt, data), (kind.prompt, kind.instructions), data)
    else:  # the whole state, feedback included
        prompt = _json.encode(dict(data)).decode()
    messages.append({"role": "user", "content": prompt})
    return messages


def with_feedback(rendered: str, templates: tuple[str | None, ...], data: Mapping[str, Any]) -> str:
    """A prompt that an eval's ``retry_with_feedback`` sent back: the feedback follows it,
    unless the node's templates place it themselves (``{{ state.__eval_feedback__ }}``)."""
    feedback = data.get(FEEDBACK_KEY)
    if not feedback or any(_places_feedback(t) for t in templates):
        return rendered
    return f"{rendered}\n\n{feedback}"


def _places_feedback(text: str | None) -> bool:
    if not text:
        return False
    return any(path[-1] == FEEDBACK_KEY for path in parse_template(text).variables())


def call_args(
    spec: ModelSpec,
    messages: Sequence[Any],
    tools: Sequence[ToolSpec],
    temperature: float | None,
    max_tokens: int | None,
    output_schema: dict[str, Any] | None,
    reply: str,
    costs: CostTable,
) -> dict[str, Any]:
    """The model tool's input. ``reply``: ``value`` (a model node: the answer, parsed when
    it has a schema), ``json_or_text`` (a model node of the jamjet SDK's form: see
    :mod:`tether.agents.kinds.answers`) or ``full`` (an agent: text and tool calls)."""
    args: dict[str, Any] = {
        "model": spec.name,
        "provider": spec.provider,
        "provider_model": spec.model,
        "messages": list(messages),
        "reply": reply,
    }
    if tools:
        args["tools"] = [msgspec.to_builtins(t) for t in tools]
    if spec.max_concurrency is not None:
        args["max_concurrency"] = spec.max_concurrency
    if spec.cost is not None:
        args["price"] = [spec.cost.input_usd_per_mtok, spec.cost.output_usd_per_mtok]
    if temperature is not None:
        args["temperature"] = temperature
    if max_tokens is not None:
        args["max_output_tokens"] = max_tokens
    if output_schema is not None:
        args["output_schema"] = output_schema
    tokens_in = len(_json.encode(args["messages"])) // _CHARS_PER_TOKEN
    tokens_in += len(_json.encode(args.get("tools", []))) // _CHARS_PER_TOKEN
    tokens_out = max_tokens or PROJECTED_OUTPUT_TOKENS
    price = spec.cost or costs.price(spec.model)
    cost = 0.0
    if price is not None:
        cost = (tokens_in * price.input_usd_per_mtok + tokens_out * price.output_usd_per_mtok) / 1e6
    args["projected_tokens"] = tokens_in + tokens_out
    args["projected_cost_usd"] = round(cost, 8)
    return args
