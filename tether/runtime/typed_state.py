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

import msgspec

from tether.errors import InvalidInput
from tether.ir.state_schema import value_matches  # one rule for compile time and run time
from tether.ir.types import StateField, Workflow


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


#: Made once: ``msgspec.msgpack.decode(..., type=dict[str, Any])`` builds its decoder per call
#: (half of this check's cost on every run's start).
_INPUT_DECODER = msgspec.msgpack.Decoder(dict[str, Any])


def checked_input(workflow: Workflow, given: object) -> dict[str, Any]:
    """The input as the journal will hold it, or InvalidInput saying what is wrong.

    A mapping with string keys whose values the journal can encode (no sets, no integers
    beyond 64 bits, no arbitrary objects) and that fits the typed state.
    """
    where = f"input for workflow {workflow.ref}"
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise InvalidInput(f"{where}: expected a mapping of state keys, got {type(given).__name__}")
    bad_keys = [k for k in given if not isinstance(k, str)]
    if bad_keys:
        raise InvalidInput(f"{where}: state keys must be strings, got {bad_keys[0]!r}")
    try:
        data = _INPUT_DECODER.decode(msgspec.msgpack.encode(dict(given)))
    except (msgspec.EncodeError, msgspec.DecodeError, OverflowError, TypeError) as exc:
        raise InvalidInput(f"{where}: a value cannot be stored in the journal: {exc}") from exc
    problems = input_problems(workflow.typed_schema(), data)
    if problems:
        raise InvalidInput(f"{where}: " + "; ".join(problems))
    return data
