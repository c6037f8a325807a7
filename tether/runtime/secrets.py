"""Secret references: a node input ``${secret:NAME}`` is journaled, shown and sent to workers
as that string; its value is looked up only where the tool runs, and never leaves there (I14).

Where a tool runs (the in-process pool, a ``tether worker`` process), a :class:`SecretSource`
gives the value; :func:`resolved_input` swaps references for values just before the call and
:func:`scrub` / :func:`scrub_value` take the values back out of whatever the outcome says
(error text, traceback, the output of a call that used one) before it is described, journaled
or sent to the engine. The runtime holds no provider code:
a vault client is one class with a ``secret(name)`` method.

Example::

    source = secret_source(None)                  # TETHER_SECRET_<NAME> of this process
    source = secret_source({"STRIPE": "sk_live_..."})
    kwargs, used = resolved_input({"api_key": "${secret:STRIPE}", "n": 1}, source)
    scrub("401 for key sk_live_...", used)        # '401 for key ${secret:STRIPE}'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, runtime_checkable

from tether.ir.secret_refs import REF_PREFIX, secret_name

__all__ = [
    "ENV_PREFIX",
    "REF_PREFIX",
    "EnvSecrets",
    "MissingSecret",
    "SecretSource",
    "SecretsArg",
    "has_reference",
    "resolved_input",
    "scrub",
    "scrub_value",
    "secret_name",
    "secret_source",
]

#: The environment variable prefix of :class:`EnvSecrets`.
ENV_PREFIX: Final = "TETHER_SECRET_"


@runtime_checkable
class SecretSource(Protocol):
    """Gives the value of a named secret, or None when it has none by that name."""

    def secret(self, name: str) -> str | None: ...


class EnvSecrets:
    """Secrets from environment variables ``TETHER_SECRET_<NAME>`` (of this process unless
    another mapping is given)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def secret(self, name: str) -> str | None:
        return self._environ.get(ENV_PREFIX + name) or None


class _MappingSecrets:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def secret(self, name: str) -> str | None:
        return self._values.get(name) or None


class _CallableSecrets:
    def __init__(self, fn: Callable[[str], str | None]) -> None:
        self._fn = fn

    def secret(self, name: str) -> str | None:
        return self._fn(name) or None


SecretsArg = SecretSource | Mapping[str, str] | Callable[[str], "str | None"] | None


def secret_source(secrets: SecretsArg) -> SecretSource:
    """A SecretSource from what a ``Runtime(secrets=...)`` caller gave: None (the process
    environment, ``TETHER_SECRET_<NAME>``), a mapping of names to values, a function of the
    name, or a SecretSource."""
    if secrets is None:
        return EnvSecrets()
    if isinstance(secrets, SecretSource):
        return secrets
    if isinstance(secrets, Mapping):
        return _MappingSecrets(secrets)
    if callable(secrets):
        return _CallableSecrets(secrets)
    raise TypeError(f"secrets must be a mapping, a function or a SecretSource, got {secrets!r}")


def has_reference(kwargs: Mapping[str, Any]) -> bool:
    """Does any argument reference a secret? (Paid by every step, twice: one prefix test a
    value, in a loop rather than ``any`` over a generator, whose frame cost more.)"""
    for v in kwargs.values():  # noqa: SIM110 - a loop: any() over a generator costs a frame
        if type(v) is str and v.startswith(REF_PREFIX):
            return True
    return False


class MissingSecret(Exception):
    """A referenced secret has no value where the tool runs."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def resolved_input(
    kwargs: Mapping[str, Any], source: SecretSource | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """``kwargs`` with each ``${secret:NAME}`` replaced by its value, and the values used by
    name (to :func:`scrub` with). Raises MissingSecret for a name ``source`` does not know."""
    out = dict(kwargs)
    used: dict[str, str] = {}
    for param, value in kwargs.items():
        name = secret_name(value)
        if name is None:
            continue
        secret = source.secret(name) if source is not None else None
        if not secret:
            raise MissingSecret(name)
        out[param] = used[name] = secret
    return out, used


def scrub_value(value: Any, used: Mapping[str, str]) -> Any:
    """A tool's output with every secret value in its strings (keys and values, nested in
    lists and dicts) replaced by its reference: a tool that echoes its request must not put
    the key in the journal (I14)."""
    if isinstance(value, str):
        return scrub(value, used)
    if isinstance(value, dict):
        return {scrub_value(k, used): scrub_value(v, used) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(v, used) for v in value)
    return value


def scrub(text: str, used: Mapping[str, str]) -> str:
    """``text`` with every secret value in ``used`` replaced by its reference. Longer values
    first: one secret may contain another."""
    for name, value in sorted(used.items(), key=lambda kv: -len(kv[1])):
        if value in text:
            text = text.replace(value, f"{REF_PREFIX}{name}}}")
    return text
