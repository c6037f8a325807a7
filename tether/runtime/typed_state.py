"""Typed workflow state: initial values from the schema and input, and type checks on writes.

Example::

    schema = {"n": StateField(type="integer", default=0)}
    initial_data(schema, {"n": 2})            # {"n": 2}
    type_problem(schema, "n", "two")          # "state key 'n' is integer, got string 'two'"
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tether.ir.types import StateField

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def value_matches(type_name: str, value: Any) -> bool:
    if type_name == "any":
        return True
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    return isinstance(value, _PY_TYPES.get(type_name, (object,)))


def type_problem(schema: Mapping[str, StateField], key: str, value: Any) -> str | None:
    """Why ``value`` may not be stored under ``key``, or None when it may."""
    field = schema.get(key)
    if field is None or value_matches(field.type, value):
        return None
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"state key {key!r} is {field.type}, got {json_type_name(value)} {shown}"


def input_problems(schema: Mapping[str, StateField], given: Mapping[str, Any]) -> list[str]:
    """Type errors and missing required keys in an execution's input."""
    problems = [p for k, v in given.items() if (p := type_problem(schema, k, v))]
    problems += [
        f"state key {k!r} is required but missing from the input"
        for k, f in schema.items()
        if f.required and k not in given
    ]
    return problems


def initial_data(schema: Mapping[str, StateField], given: Mapping[str, Any]) -> dict[str, Any]:
    """Schema defaults (deep-copied, so runs never share a mutable default) overlaid by input."""
    data = {k: copy.deepcopy(f.default) for k, f in schema.items() if f.default is not None}
    data.update(given)
    return data
