"""A model's fallbacks (``models: {smart: {..., fallback: fast}}``): bound into the call's
arguments at hand-out, so the journal says which models a call could use, and tried by the
model tool in order when the model before failed transiently.

Only a transient failure (5xx, a timeout, an unreachable provider) falls back: a 429 parks the
call for the same model (it will have room again), and a refusal (another 4xx) says the call
itself is wrong, which another model would not mend. ``node_completed`` says which model
answered (``gen_ai_model``) and, when it was a fallback, which failed first
(``fallback_from``, ``fallback_error``). When every model fails, the first failure is the
attempt's, and the runtime retries the whole chain with backoff.

Example::

    args = with_fallbacks(wf, call_args(model_spec(wf, "smart"), ...), costs)
    [f["model"] for f in args["fallbacks"]]        # ['fast']
"""

from __future__ import annotations

from typing import Any

from tether.agents.kinds.model_calls import PROJECTED_OUTPUT_TOKENS
from tether.agents.providers.config import ModelSpec, fallback_chain, parse_models
from tether.agents.providers.costs import CostTable
from tether.ir.types import Workflow

#: The keys of a call's arguments that say which model it calls.
MODEL_KEYS = ("model", "provider", "provider_model", "max_concurrency", "price")


def with_fallbacks(wf: Workflow, args: dict[str, Any], costs: CostTable) -> dict[str, Any]:
    """``args`` with the models ``args["model"]`` falls back to, if it has any, and its
    projected cost the most any of them would cost (the budget is checked before the call,
    not knowing which model will answer)."""
    if not wf.models:
        return args
    config = parse_models(wf.models)
    if config.get(args["model"]) is None:
        return args  # a bare model name has no fallback
    chain = fallback_chain(config, args["model"])[1:]
    if chain:
        args["fallbacks"] = [_model_fields(spec) for spec in chain]
        dearest = max(_projected_cost(spec, args, costs) for spec in chain)
        args["projected_cost_usd"] = max(args.get("projected_cost_usd", 0.0), dearest)
    return args


def _projected_cost(spec: ModelSpec, args: dict[str, Any], costs: CostTable) -> float:
    tokens_out = args.get("max_output_tokens") or PROJECTED_OUTPUT_TOKENS
    tokens_in = max(int(args.get("projected_tokens", 0)) - tokens_out, 0)
    price = spec.cost or costs.price(spec.model)
    if price is None:
        return 0.0
    usd = tokens_in * price.input_usd_per_mtok + tokens_out * price.output_usd_per_mtok
    return round(usd / 1e6, 8)


def attempts(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The call's arguments for each model to try, in order."""
    first = {k: args[k] for k in MODEL_KEYS if k in args}
    rest = args.get("fallbacks") or []
    return [first, *(f for f in rest if isinstance(f, dict))]


def _model_fields(spec: ModelSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model": spec.name,
        "provider": spec.provider,
        "provider_model": spec.model,
    }
    if spec.max_concurrency is not None:
        fields["max_concurrency"] = spec.max_concurrency
    if spec.cost is not None:
        fields["price"] = [spec.cost.input_usd_per_mtok, spec.cost.output_usd_per_mtok]
    return fields
