"""Small value parsers shared by the YAML compiler: durations, retry policies, typed fields.

Each raises ``ValueProblem(subpath, message)``; the compiler adds the file and line.

Example::

    >>> parse_duration("1.5m")
    90.0
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from tether.ir.types import RetryPolicy

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_RETRY_KEYS = {
    "max_attempts", "backoff_initial_secs", "backoff_multiplier", "backoff_max_secs",
    "jitter", "retry_on", "backoff", "delay_ms", "max_delay_ms", "delay", "max_delay",
    "max_lease_losses",
}  # fmt: skip
_BACKOFF_MULTIPLIER = {"exponential": 2.0, "constant": 1.0, "fixed": 1.0}


class ValueProblem(ValueError):
    """A bad value; ``subpath`` (possibly empty) is relative to the value being parsed."""

    def __init__(self, subpath: tuple[str | int, ...], message: str) -> None:
        self.subpath = subpath
        super().__init__(message)


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``2.5``, ``"30s"``, ``"500ms"``, ``"5m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT_SECS[m.group(2)]
    raise ValueProblem((), f"invalid duration {value!r} (expected e.g. 30, 30s, 500ms, 5m, 2h)")


def convert(value: Any, type_: type[T], what: str) -> T:
    """``msgspec.convert`` with the error rewritten to name ``what`` and the failing field."""
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        text = str(exc)
        subpath: tuple[str | int, ...] = ()
        if " - at `$." in text:
            text, _, where = text.partition(" - at `$.")
            subpath = tuple(
                int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", where.rstrip("`")) if p
            )
            text = f"{text} at '{'.'.join(str(p) for p in subpath)}'"
        raise ValueProblem(subpath, f"{what}: {text}") from None


def parse_retry(raw: Any) -> RetryPolicy:
    """A retry policy from Tether's field names or the jamjet docs' (backoff, delay_ms ...)."""
    if not isinstance(raw, Mapping):
        raise ValueProblem((), "retry policy must be a mapping (e.g. {max_attempts: 3})")
    unknown = sorted(set(raw) - _RETRY_KEYS)
    if unknown:
        expected = ", ".join(sorted(_RETRY_KEYS))
        raise ValueProblem(
            (unknown[0],), f"unknown retry field {unknown[0]!r} (expected one of: {expected})"
        )
    fields = {k: v for k, v in raw.items() if k in RetryPolicy.__struct_fields__}
    if "backoff" in raw:
        style = raw["backoff"]
        if style not in _BACKOFF_MULTIPLIER:
            raise ValueProblem(
                ("backoff",), f"backoff {style!r} is not supported (use exponential or constant)"
            )
        fields.setdefault("backoff_multiplier", _BACKOFF_MULTIPLIER[style])
    for key, target, scale in (
        ("delay_ms", "backoff_initial_secs", 0.001),
        ("max_delay_ms", "backoff_max_secs", 0.001),
    ):
        if key in raw:
            fields[target] = _number(raw[key], key) * scale
    for key, target in (("delay", "backoff_initial_secs"), ("max_delay", "backoff_max_secs")):
        if key in raw:
            fields[target] = _at(key, parse_duration, raw[key])
    return convert(fields, RetryPolicy, "retry policy")


def _number(value: Any, key: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueProblem((key,), f"{key} must be a number, got {value!r}")


def _at(key: str, parse: Any, value: Any) -> Any:
    try:
        return parse(value)
    except ValueProblem as exc:
        raise ValueProblem((key, *exc.subpath), str(exc)) from None


def as_str(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    raise ValueProblem((), f"{what} must be a string, got {value!r}")


def as_name_list(value: Any, what: str) -> list[str]:
    """A list of node names; a single name is accepted as a one-item list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueProblem((), f"{what} must be a list of node names, got {value!r}")


def as_str_list(value: Any, what: str) -> list[str]:
    """A list of strings (user ids, state keys); a single string is a one-item list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueProblem((), f"{what} must be a list of strings, got {value!r}")


def as_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    raise ValueProblem((), f"{what} must be a mapping, got {value!r}")
