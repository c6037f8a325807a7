"""Typed state schemas: the accepted spellings and the type check of values.

Three spellings are accepted and all become ``dict[str, StateField]``:

* short form, one type per key: ``n: integer`` (also the jamjet docs' ``str``, ``float``,
  ``list[str]`` ...);
* long form: ``n: {type: integer, default: 0, required: false}``;
* JSON Schema: ``{type: object, properties: {n: {type: integer}}, required: [n]}``.

Unknown type names are kept as written so that validation can report them with a location.

Example::

    >>> parse_state_schema({"n": "int"})["n"].type
    'integer'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.ir.types import STATE_TYPES, StateField

_ALIASES = {
    "str": "string", "text": "string", "int": "integer", "float": "number",
    "bool": "boolean", "dict": "object", "list": "array", "none": "null",
    "None": "null", "Any": "any", "map": "object",
}  # fmt: skip
_FIELD_KEYS = {"type", "default", "required", "description", "enum"}


class SchemaShapeError(ValueError):
    """A schema entry has the wrong shape; ``path`` is the dotted path below the schema."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


def normalize_type(name: str) -> str:
    """Map an accepted alias (``int``, ``list[str]``) to a ``STATE_TYPES`` name."""
    name = name.strip()
    base = name.split("[", 1)[0].strip()
    if name in STATE_TYPES:
        return name
    if base in _ALIASES:
        return _ALIASES[base]
    return name


def parse_state_schema(raw: Any) -> dict[str, StateField]:
    """Turn any accepted spelling into fields; raises ``SchemaShapeError`` on a bad shape."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, Mapping):
        raise SchemaShapeError("", "state_schema must be a mapping of key -> type")
    if raw.get("type") == "object" and isinstance(raw.get("properties"), Mapping):
        return _from_json_schema(raw)
    return {str(key): _field(str(key), spec) for key, spec in raw.items()}


def _field(key: str, spec: Any) -> StateField:
    if isinstance(spec, str):
        return StateField(type=normalize_type(spec))
    if spec is None:
        return StateField()
    if not isinstance(spec, Mapping):
        raise SchemaShapeError(key, f"state key {key!r}: expected a type name or a mapping")
    unknown = sorted(set(spec) - _FIELD_KEYS)
    if unknown:
        raise SchemaShapeError(
            f"{key}.{unknown[0]}",
            f"state key {key!r}: unknown field {unknown[0]!r} "
            f"(expected one of: {', '.join(sorted(_FIELD_KEYS))})",
        )
    type_name = spec.get("type", "any")
    if not isinstance(type_name, str):
        raise SchemaShapeError(f"{key}.type", f"state key {key!r}: type must be a name")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise SchemaShapeError(f"{key}.required", f"state key {key!r}: required must be a bool")
    default = spec.get("default")
    return StateField(type=normalize_type(type_name), default=default, required=required)


def _from_json_schema(raw: Mapping[str, Any]) -> dict[str, StateField]:
    required = raw.get("required") or []
    if not isinstance(required, list):
        raise SchemaShapeError("required", "state_schema.required must be a list of keys")
    fields: dict[str, StateField] = {}
    for key, spec in raw["properties"].items():
        if not isinstance(spec, Mapping):
            raise SchemaShapeError(f"properties.{key}", f"property {key!r} must be a mapping")
        type_name = spec.get("type", "any")
        fields[str(key)] = StateField(
            type=normalize_type(str(type_name)),
            default=spec.get("default"),
            required=key in required,
        )
    return fields


def value_matches(type_name: str, value: Any) -> bool:
    """Whether ``value`` fits the declared type (``None`` fits every type: no value yet)."""
    if value is None or type_name == "any":
        return True
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, Mapping)
    if type_name == "array":
        return isinstance(value, list | tuple)
    return False  # 'null' with a non-null value, or an unknown type name
