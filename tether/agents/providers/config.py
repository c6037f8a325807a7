"""The ``models`` section of a configuration, parsed into frozen structs with clear errors.

Each entry names a model by an alias; a bare string is short for ``{model: <it>}``::

    models:
      fast: {provider: openai, model: gpt-4o-mini, max_concurrency: 8}
      smart: {provider: anthropic, model: claude-sonnet-4-5, fallback: fast}
      local: {provider: openai, model: llama3, cost: {input: 0, output: 0}}
      cheap: gemini-2.5-flash

Example::

    config = parse_models(yaml.safe_load(text)["models"])
    [s.name for s in fallback_chain(config, "smart")]      # ["smart", "fast"]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from tether.agents.providers.costs import Price
from tether.agents.providers.errors import ModelConfigError
from tether.agents.providers.resolve import provider_for

__all__ = ["ModelSpec", "ModelsConfig", "fallback_chain", "parse_models"]

_FIELDS: Final = ("provider", "model", "max_concurrency", "fallback", "cost")


class ModelSpec(msgspec.Struct, frozen=True):
    """One configured model: its alias ``name``, ``provider`` (resolved from the model's
    family when the entry gave none), the provider's ``model`` name, the most calls of it at
    once (None: no cap), the alias to fall back to, and a price that overrides the table's."""

    name: str
    provider: str
    model: str
    max_concurrency: int | None = None
    fallback: str | None = None
    cost: Price | None = None


class ModelsConfig(msgspec.Struct, frozen=True):
    """The configured models, in the order the section gave them."""

    models: tuple[ModelSpec, ...] = ()

    def get(self, name: str) -> ModelSpec | None:
        """The model configured under alias ``name``, or None."""
        return next((m for m in self.models if m.name == name), None)

    def names(self) -> list[str]:
        return [m.name for m in self.models]


def parse_models(section: Any, where: str = "models") -> ModelsConfig:
    """Parse a ``models`` mapping; :class:`ModelConfigError` names the bad field (``where`` is
    its path in the whole configuration)."""
    if not isinstance(section, Mapping):
        raise ModelConfigError(f"{where}: expected a mapping of model names, got {_kind(section)}")
    specs = tuple(_spec(str(name), entry, f"{where}.{name}") for name, entry in section.items())
    config = ModelsConfig(specs)
    for spec in specs:
        if spec.fallback is not None and config.get(spec.fallback) is None:
            known = ", ".join(config.names())
            raise ModelConfigError(
                f"{where}.{spec.name}.fallback: {spec.fallback!r} is not a model here "
                f"(known: {known})"
            )
        fallback_chain(config, spec.name, where)  # a loop is refused now, not at the outage
    return config


def fallback_chain(config: ModelsConfig, name: str, where: str = "models") -> tuple[ModelSpec, ...]:
    """``name``'s model and the models it falls back to, in order."""
    chain: list[ModelSpec] = []
    at: str | None = name
    while at is not None:
        spec = config.get(at)
        if spec is None:
            raise ModelConfigError(f"{where}: no model named {at!r} (known: {config.names()})")
        if spec in chain:
            loop = " -> ".join([*(s.name for s in chain), at])
            raise ModelConfigError(f"{where}.{name}.fallback: falls back in a loop: {loop}")
        chain.append(spec)
        at = spec.fallback
    return tuple(chain)


def _spec(name: str, entry: Any, where: str) -> ModelSpec:
    if isinstance(entry, str):
        entry = {"model": entry}
    if not isinstance(entry, Mapping):
        raise ModelConfigError(f"{where}: expected a mapping or a model name, got {_kind(entry)}")
    unknown = sorted(set(map(str, entry)) - set(_FIELDS))
    if unknown:
        raise ModelConfigError(f"{where}: unknown field {unknown[0]!r} (fields: {_FIELDS})")
    model = entry.get("model")
    if not isinstance(model, str) or not model:
        raise ModelConfigError(f"{where}.model: expected a model name, got {_kind(model)}")
    provider = entry.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise ModelConfigError(f"{where}.provider: expected a name, got {_kind(provider)}")
    try:
        provider = provider_for(model, provider)
    except ModelConfigError as exc:
        field = "provider" if provider is not None else "model"
        raise ModelConfigError(f"{where}.{field}: {exc}") from None
    return ModelSpec(
        name=name,
        provider=provider,
        model=model,
        max_concurrency=_cap(entry.get("max_concurrency"), f"{where}.max_concurrency"),
        fallback=_fallback(entry.get("fallback"), f"{where}.fallback"),
        cost=_price(entry.get("cost"), f"{where}.cost"),
    )


def _cap(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"{where}: expected a whole number of at least 1, got {value!r}")
    return value


def _fallback(value: Any, where: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ModelConfigError(f"{where}: expected the name of another model, got {_kind(value)}")


def _price(value: Any, where: str) -> Price | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"input", "output"}:
        raise ModelConfigError(
            f"{where}: expected {{input: <USD per million tokens>, output: <USD per million>}}"
        )
    return Price(_usd(value["input"], f"{where}.input"), _usd(value["output"], f"{where}.output"))


def _usd(value: Any, where: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ModelConfigError(f"{where}: expected US dollars per million tokens, got {value!r}")
    return float(value)


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"
