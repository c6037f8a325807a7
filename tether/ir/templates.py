"""The template language of node strings: model ``prompt``/``system``, http ``url``/``body``.

Syntax:

- ``{{ path }}`` inserts a value; spaces inside the braces are optional. A path is names and
  integer indexes joined by dots (``state.items.0.name``), with the condition language's
  name rules (letters, digits, ``_``, inner ``-``; Python special names refused). Its root
  is ``state`` (the workflow state) or ``input`` (the run's input); any other first name
  means a state key, so ``{{ query }}`` is ``{{ state.query }}``. A state key named
  ``input`` or ``state`` is reached as ``state.input`` / ``state.state``.
- Filters follow ``|`` and apply left to right:
  ``json`` renders the value as compact JSON (a string gets its quotes);
  ``default(v)`` replaces a missing or null value by the literal ``v`` (a quoted string, a
  number, ``true``/``false``/``null``), so put it first;
  ``join`` / ``join(sep)`` joins a list, each item rendered as below (used by jamjet's
  ``{{ state.search_results | join('\\n\\n') }}``).
  String literals take ``'`` or ``"`` and the escapes ``\\n \\t \\r \\\\ \\' \\"``.
- A literal ``{{`` is written ``{{ '{{' }}`` (any string literal renders as itself), the
  Jinja idiom, so templates mean the same under jamjet's own renderer. ``escape`` does it.
  A lone ``{``, ``}`` or ``}}`` outside a placeholder is plain text.

- After a path, as in Jinja (and jamjet's templates: ``state.repo.split('/')[0]``): one call
  of a string method among ``split``, ``strip``, ``lower``, ``upper`` with literal arguments,
  then ``[key]`` subscripts (an integer, negative from the end, for a list or string; a string
  for a mapping; an absent item is missing, so ``default`` applies). They apply before the
  filters.

Not supported, and refused at parse time with a column: other calls, a method after a
subscript, custom filters such as ``extract_path``, whitespace control (``{{-``),
statements (``{% %}``). Nothing is ever evaluated: a path is only looked up in mappings and
lists (``conditions.lookup``), never through attributes, and a method is ``str``'s own.

Rendering: a string is inserted as is; numbers, booleans, null, lists and objects as
compact JSON (``true``, ``null``, ``[1,2]``), never Python's ``True``/``None``. A missing
path raises ``TemplateMissing`` unless ``default`` is given. Templates are at most
``MAX_TEMPLATE_CHARS`` characters; output is bounded by ``max_output``
(``DEFAULT_MAX_OUTPUT``); placeholders cannot nest, by construction of the grammar.

Example::

    >>> parse_template("Plan for: {{ state.query }}").render({"query": "tea"})
    'Plan for: tea'
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tether.ir.conditions import lookup, type_name
from tether.ir.errors import WorkflowError

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "MAX_TEMPLATE_CHARS",
    "Filter",
    "Placeholder",
    "Template",
    "TemplateError",
    "TemplateMissing",
    "escape",
    "parse_template",
    "render_value",
]

from tether.ir.template_syntax import (
    _OPEN,
    DEFAULT_MAX_OUTPUT,
    FILTER_ARITY,
    MAX_TEMPLATE_CHARS,
    METHOD_ARITY,
    SUBSCRIPT,
    Filter,
    Part,
    Placeholder,
    TemplateError,
    parse_parts,
)


class TemplateMissing(WorkflowError, LookupError):
    """A path a template names is absent from the data; ``path`` includes its root."""

    def __init__(self, path: tuple[str, ...], column: int | None = None) -> None:
        self.path = path
        self.column = column
        where = "" if column is None else f" at template column {column}"
        super().__init__(
            f"the template uses {'.'.join(path)}{where}, which is missing "
            "(add | default(...) to make it optional)"
        )


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and placeholders, in order.

    Example::

        >>> t = parse_template("{{ state.user.name }} asked {{ input.q | json }}")
        >>> t.variables()
        (('state', 'user', 'name'), ('input', 'q'))
        >>> t.render({"user": {"name": "Ann"}}, {"q": "why?"})
        'Ann asked "why?"'
    """

    source: str
    parts: tuple[Part, ...]

    def variables(self) -> tuple[tuple[str, ...], ...]:
        """Each path read, root first, once, in order of first use.

        Example::

            >>> parse_template("{{ a }}{{ state.a }}{{ input.b.0 }}").variables()
            (('state', 'a'), ('input', 'b', '0'))
        """
        found = (p.variable() for p in self.parts if isinstance(p, Placeholder))
        return tuple(dict.fromkeys(v for v in found if v is not None))

    def render(
        self,
        state: Mapping[str, Any],
        input: Mapping[str, Any] | None = None,
        *,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> str:
        """The text with each placeholder replaced; see the module docstring for the rules.

        Raises ``TemplateMissing`` for an absent path without ``default``, ``TemplateError``
        past ``max_output`` characters or for a value that is not JSON data.

        Example::

            >>> parse_template("n={{ n }} tags={{ tags }}").render({"n": 2, "tags": ["a"]})
            'n=2 tags=["a"]'
        """
        return _render(self, _Data(state, input), _Budget(max_output))

    def single(self) -> Placeholder | None:
        """The placeholder when the template is exactly one and nothing else."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            return self.parts[0]
        return None


@functools.lru_cache(maxsize=256)
def parse_template(text: str) -> Template:
    """Parse (and cache) a template; raises ``TemplateError`` naming the problem and column.

    Example::

        >>> parse_template("Hi {{ name | default('you') }}").render({})
        'Hi you'
    """
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"the template is {len(text)} characters; the limit is {MAX_TEMPLATE_CHARS}",
            MAX_TEMPLATE_CHARS + 1,
        )
    return Template(text, parse_parts(text))


def escape(text: str) -> str:
    """A template that renders to ``text`` exactly: each ``{{`` becomes ``{{ '{{' }}``.

    Example::

        >>> escape("use {{ x }}")
        "use {{ '{{' }} x }}"
    """
    return text.replace(_OPEN, "{{ '{{' }}")


def render_value(
    value: Any,
    state: Mapping[str, Any],
    input: Mapping[str, Any] | None = None,
    *,
    max_output: int = DEFAULT_MAX_OUTPUT,
) -> Any:
    """Render every string containing ``{{`` inside a JSON value; the rest is kept as is.

    A string that is exactly one placeholder gives the value itself, so a list stays a
    list. Mapping keys are not rendered. ``max_output`` bounds the characters of all
    rendered strings together; values passed through whole are not counted.

    Example::

        >>> render_value({"items": "{{ xs }}", "n": 1, "s": "x{{ xs.0 }}"}, {"xs": [7]})
        {'items': [7], 'n': 1, 's': 'x7'}
    """
    return _render_value(value, _Data(state, input), _Budget(max_output))


# --- rendering ----------------------------------------------------------------------------


class _Missing:
    """The marker of an absent value, distinct from a present null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class _Data:
    state: Mapping[str, Any]
    input: Mapping[str, Any] | None

    def resolve(self, root: str, path: tuple[str, ...]) -> Any:
        """The value at ``root.path``, or ``MISSING``; a present null stays ``None``."""
        data = self.state if root == "state" else self.input
        if data is None:
            return MISSING
        if not path:
            return data
        # `lookup` folds "absent" into None; asking the parent tells the two apart.
        parent, last = lookup(data, path[:-1]), path[-1]
        if isinstance(parent, Mapping):
            return parent.get(last, MISSING)
        if isinstance(parent, list | tuple) and last.isdigit() and int(last) < len(parent):
            return parent[int(last)]
        return MISSING


class _Budget:
    """Characters left for output; shared by every string of one ``render_value``."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, count: int, column: int) -> None:
        self.left -= count
        if self.left < 0:
            raise TemplateError(
                f"the rendered output exceeds {self.limit} characters (max_output)", column
            )


def _render(template: Template, data: _Data, budget: _Budget) -> str:
    pieces: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            piece, column = part, 1
        else:
            piece, column = _to_text(_evaluate(part, data), part.column), part.column
        budget.spend(len(piece), column)
        pieces.append(piece)
    return "".join(pieces)


def _evaluate(ph: Placeholder, data: _Data) -> Any:
    """The placeholder's value after its filters; raises ``TemplateMissing`` if absent."""
    value = ph.constant if ph.root is None else data.resolve(ph.root, ph.path)
    for step in ph.filters:
        spec = _FILTERS[step.name]
        if value is MISSING and not spec.takes_missing:
            break
        value = spec.apply(value, step)
    if value is MISSING:
        raise TemplateMissing(ph.variable() or (), ph.column)
    return value


def _to_text(value: Any, column: int) -> str:
    return value if isinstance(value, str) else _to_json(value, column)


def _to_json(value: Any, column: int) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        # Only plain JSON data is rendered: never a repr() or attributes of an object.
        reason = f"the value is not JSON data ({type_name(value)}): {exc}"
        raise TemplateError(reason, column) from None


def _render_value(value: Any, data: _Data, budget: _Budget) -> Any:
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        template = parse_template(value)
        whole = template.single()
        return _evaluate(whole, data) if whole else _render(template, data, budget)
    if isinstance(value, Mapping):
        return {k: _render_value(v, data, budget) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render_value(v, data, budget) for v in value]
    return value


# --- filters ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FilterSpec:
    apply: Callable[[Any, Filter], Any]
    takes_missing: bool = False


def _default(value: Any, step: Filter) -> Any:
    return step.args[0] if value is MISSING or value is None else value


def _json(value: Any, step: Filter) -> str:
    return _to_json(value, step.column)


def _join(value: Any, step: Filter) -> str:
    if not isinstance(value, list | tuple):
        raise TemplateError(f"filter 'join' needs a list, got {type_name(value)}", step.column)
    sep: str = step.args[0] if step.args else ""
    return sep.join(_to_text(item, step.column) for item in value)


def _method(value: Any, step: Filter) -> Any:
    if not isinstance(value, str):
        reason = f"method {step.name!r} needs a string, got {type_name(value)}"
        raise TemplateError(reason, step.column)
    # A name from METHOD_ARITY only (checked when parsed): str's own methods, nothing else.
    return getattr(str, step.name)(value, *step.args)


def _subscript(value: Any, step: Filter) -> Any:
    """The item or key (MISSING when absent, so ``| default(...)`` applies)."""
    key = step.args[0]
    if isinstance(key, str) and isinstance(value, Mapping):
        return value.get(key, MISSING)
    if isinstance(key, int) and isinstance(value, list | tuple | str):
        return value[key] if -len(value) <= key < len(value) else MISSING
    reason = f"cannot take [{key!r}] of {type_name(value)}"
    raise TemplateError(reason, step.column)


_FILTERS: dict[str, _FilterSpec] = {
    "default": _FilterSpec(_default, takes_missing=True),
    "json": _FilterSpec(_json),
    "join": _FilterSpec(_join),
    **{name: _FilterSpec(_method) for name in METHOD_ARITY},
    SUBSCRIPT: _FilterSpec(_subscript),
}
assert _FILTERS.keys() == {*FILTER_ARITY, *METHOD_ARITY, SUBSCRIPT}, "parser and renderer disagree"
