"""The condition language used by edges (``when:``) and branch cases.

Syntax (see ``condition_syntax``): state paths (``score``, ``state.score``, ``user.tier``,
``items.0``), literals (numbers, quoted strings, ``true``/``false``/``null`` and Python's
``True``/``False``/``None``), ``== != < <= > >=``, ``in``/``not in``, ``is``/``is not``
(with null/true/false), ``and``/``or``/``not``, parentheses and lists like ``['a', 'b']``.
A source wrapped in ``{{ }}`` is accepted too.

Semantics: a missing path is ``null``; ``and``/``or``/``not`` produce booleans and
short-circuit; ordering needs two numbers or two strings, otherwise ``ConditionEvalError``;
``==`` never treats a boolean as equal to a number.

Example::

    >>> cond = compile_condition("state.n > 3 and tier in ['gold', 'silver']")
    >>> cond.evaluate({"n": 4, "tier": "gold"})
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from tether.ir.condition_syntax import Node, parse
from tether.ir.errors import ConditionEvalError, ConditionSyntaxError

__all__ = [
    "Condition",
    "ConditionEvalError",
    "ConditionSyntaxError",
    "compile_condition",
    "lookup",
    "type_name",
    "values_equal",
]

Evaluator = Callable[[Mapping[str, Any]], Any]


class Condition:
    """A compiled condition: a tree of closures, evaluated without any ``eval``."""

    __slots__ = ("_fn", "paths", "source")

    def __init__(self, source: str, fn: Evaluator, paths: tuple[str, ...]) -> None:
        self.source = source
        self.paths = paths  # the state paths it reads, 'state.' prefix removed
        self._fn = fn

    def evaluate(self, state: Mapping[str, Any]) -> bool:
        """Whether the condition holds in ``state``; raises ``ConditionEvalError``."""
        return bool(self._fn(state))

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


@functools.lru_cache(maxsize=4096)
def compile_condition(source: str) -> Condition:
    """Compile (and cache) a condition; raises ``ConditionSyntaxError`` with a column.

    Example::

        >>> compile_condition("x == null").evaluate({})
        True
    """
    text, offset = _unwrap(source)
    try:
        tree = parse(text)
    except ConditionSyntaxError as exc:
        raise ConditionSyntaxError(source, exc.column + offset, exc.reason) from None
    paths: list[str] = []
    fn = _Compiler(source, text, paths).compile(tree)
    return Condition(source, fn, tuple(dict.fromkeys(paths)))


def _unwrap(source: str) -> tuple[str, int]:
    """Strip one ``{{ ... }}`` wrapper (template style); return the text and its offset."""
    stripped = source.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and len(stripped) >= 4:
        start = source.index("{{") + 2
        return source[start : source.rindex("}}")], start
    return source, 0


def type_name(value: Any) -> str:
    """The condition-language name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _show(value: Any) -> str:
    return "null" if value is None else f"{type_name(value)} {value!r}"


def values_equal(a: Any, b: Any) -> bool:
    """``==`` of the language: like Python's, except a boolean never equals a number."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _orderable(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return True
    return isinstance(a, str) and isinstance(b, str)


def lookup(state: Mapping[str, Any], segments: tuple[str, ...]) -> Any:
    """Follow a path through mappings and lists; anything missing is ``None``.

    Only mapping keys and list indexes are followed, never attributes.
    """
    cur: Any = state
    for seg in segments:
        if isinstance(cur, Mapping):
            cur = cur.get(seg)
        elif isinstance(cur, list | tuple) and seg.isdigit():
            idx = int(seg)
            cur = cur[idx] if idx < len(cur) else None
        else:
            return None
    return cur


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


class _Compiler:
    def __init__(self, source: str, text: str, paths: list[str]) -> None:
        self.source = source
        self.text = text
        self.paths = paths

    def error(self, node: Node, problem: str) -> ConditionEvalError:
        part = self.text[node.start : node.end]
        where = "" if part.strip() == self.source.strip() else f" (in {part!r})"
        return ConditionEvalError(f"condition {self.source!r}: {problem}{where}")

    def compile(self, node: Node) -> Evaluator:
        op = node.op
        if op == "lit":
            value = node.value
            return lambda state: value
        if op == "path":
            return self.path(node.value)
        if op == "list":
            items = [self.compile(a) for a in node.args]
            return lambda state: [f(state) for f in items]
        if op == "not":
            inner = self.compile(node.args[0])
            return lambda state: not inner(state)
        if op == "len":
            return self.length(node, self.compile(node.args[0]))
        if op in ("and", "or"):
            return self.chain(op, [self.compile(a) for a in node.args])
        left, right = (self.compile(a) for a in node.args)
        return self.comparison(node, left, right)

    def chain(self, op: str, parts: list[Evaluator]) -> Evaluator:
        """``and`` / ``or`` over a chain of operands, short-circuiting, giving a boolean."""
        if len(parts) == 2:  # the common case, kept to two direct calls
            left, right = parts
            if op == "and":
                return lambda state: bool(left(state)) and bool(right(state))
            return lambda state: bool(left(state)) or bool(right(state))
        if op == "and":
            return lambda state: all(f(state) for f in parts)
        return lambda state: any(f(state) for f in parts)

    def path(self, segments: tuple[str, ...]) -> Evaluator:
        self.paths.append(".".join(segments))
        if len(segments) == 1 and not segments[0].isdigit():
            key = segments[0]
            return lambda state: state.get(key)  # the common case, kept fast
        return lambda state: lookup(state, segments)

    def length(self, node: Node, inner: Evaluator) -> Evaluator:
        def size(state: Mapping[str, Any]) -> int:
            value = inner(state)
            if not isinstance(value, str | list | tuple | Mapping):
                raise self.error(node, f"len() of {_show(value)}: not a text, list or mapping")
            return len(value)

        return size

    def comparison(self, node: Node, left: Evaluator, right: Evaluator) -> Evaluator:
        op = node.op
        if op == "==":
            return lambda state: values_equal(left(state), right(state))
        if op == "!=":
            return lambda state: not values_equal(left(state), right(state))
        if op in ("is", "is not"):
            negate = op == "is not"
            return lambda state: (left(state) is right(state)) != negate
        if op in ("in", "not in"):
            return self.membership(node, left, right, negate=op == "not in")
        order = _ORDER[op]

        def compare(state: Mapping[str, Any]) -> bool:
            a, b = left(state), right(state)
            if not _orderable(a, b):
                raise self.error(node, f"cannot compare {_show(a)} {op} {_show(b)}")
            return order(a, b)

        return compare

    def membership(self, node: Node, left: Evaluator, right: Evaluator, negate: bool) -> Evaluator:
        def contains(state: Mapping[str, Any]) -> bool:
            item, container = left(state), right(state)
            if isinstance(container, list | tuple):
                found = any(values_equal(item, x) for x in container)
            elif isinstance(container, str | Mapping) and isinstance(item, str):
                found = item in container
            else:
                raise self.error(node, f"cannot test {_show(item)} in {_show(container)}")
            return found != negate

        return contains
