"""The syntax of node templates: their parts (literal text and placeholders) and the parser
that makes them; ``tether.ir.templates`` is the public side (``parse_template``, rendering).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

# The condition language's name pattern, shared so a key reachable from an edge's `when:`
# is reachable from a template and vice versa.
from tether.ir.condition_syntax import _NAME, RESERVED_NAMES
from tether.ir.errors import WorkflowError

#: Longest template source accepted; prompts are long, but not this long.
MAX_TEMPLATE_CHARS: Final = 64 * 1024
#: Default bound on one render's output, in characters (``render_value``: on all strings).
DEFAULT_MAX_OUTPUT: Final = 1024 * 1024

ROOTS: Final = ("state", "input")
_OPEN, _CLOSE = "{{", "}}"
_SNIPPET = 60  # characters of a placeholder quoted in an error message


class TemplateError(WorkflowError):
    """The template is malformed, or a render broke a bound; ``column`` is 1-based.

    ``column`` counts characters from the start of the whole template (newlines included),
    like ``ConditionSyntaxError``'s. The message is one line.
    """

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"template column {column}: {message}")


@dataclass(frozen=True, slots=True)
class Filter:
    """One ``| name(args)`` step; ``column`` is where its name starts."""

    name: str
    args: tuple[Any, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{{ ... }}``: a ``path`` under ``root`` (or a string ``constant``), then filters."""

    root: str | None  # 'state' or 'input'; None for a string literal
    path: tuple[str, ...]
    constant: str
    filters: tuple[Filter, ...]
    column: int
    source: str

    def variable(self) -> tuple[str, ...] | None:
        """The full path read, root first, or None for a literal."""
        return None if self.root is None else (self.root, *self.path)


Part = str | Placeholder


#: Each filter's number of arguments (least, most); ``templates`` holds what each one does.
FILTER_ARITY: Final[dict[str, tuple[int, int]]] = {
    "default": (1, 1),
    "json": (0, 0),
    "join": (0, 1),
}


#: The string methods a path may call, Jinja's way (``state.repo.split('/')``), with their
#: number of arguments (least, most); each becomes a step like a filter. Nothing else is called.
METHOD_ARITY: Final[dict[str, tuple[int, int]]] = {
    "split": (0, 2),
    "strip": (0, 1),
    "lower": (0, 0),
    "upper": (0, 0),
}
#: The step name of a ``[key]`` subscript (no filter or method can be named so).
SUBSCRIPT: Final = "[]"


def parse_parts(text: str) -> tuple[Part, ...]:
    """The parts of a template's source (no length check: ``parse_template`` makes it)."""
    parts: list[Part] = []
    pos = 0
    while (start := text.find(_OPEN, pos)) != -1:
        _add_text(parts, text[pos:start], pos, text)
        placeholder, pos = _Parser(text, start).placeholder()
        if placeholder.root is None and not placeholder.filters:
            _add_text(parts, placeholder.constant)  # an escape: plain text from here on
        else:
            parts.append(placeholder)
    _add_text(parts, text[pos:], pos, text)
    return tuple(parts)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<close>}}}})
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<num>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<path>{_NAME}(?:\.(?:{_NAME}|[0-9]+))*)
  | (?P<op>[|(),\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # ws is dropped; str, num, path, op, close remain
    text: str
    start: int  # offset in the whole template


#: Jinja's statement opener: a template with ``{% if %}`` would otherwise reach the model as
#: text (jamjet's multi-agent-review template has one).
_STATEMENT: Final = "{%"


def _add_text(parts: list[Part], text: str, at: int = 0, source: str = "") -> None:
    """Append literal text, merged with a preceding literal so renders join fewer pieces.
    ``at``: where ``text`` starts in ``source`` (to name the column of a statement)."""
    if not text:
        return
    if source and (found := text.find(_STATEMENT)) != -1:
        snippet = source[at + found : at + found + 40]
        raise TemplateError(
            f"statements ('{_STATEMENT} ... %}}') are not supported in {snippet!r}: a template "
            "has only {{ }} placeholders (write the text, with | default(...) for what may be "
            "missing)",
            at + found + 1,
        )
    if parts and isinstance(parts[-1], str):
        parts[-1] += text
    else:
        parts.append(text)


class _Parser:
    """Parses one placeholder: ``expr ('|' name ['(' literal {',' literal} ')'])* '}}'``."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.start = start
        self.tokens = self._tokenize(start + len(_OPEN))
        self.i = 0

    def placeholder(self) -> tuple[Placeholder, int]:
        """The placeholder, and the offset just past its ``}}``."""
        root, path, constant, filters = self.expr()
        while self.peek().kind != "close":
            self.expect("op", "|", what="'|' or '}}'")
            filters.append(self.filter())
        end = self.peek().start + len(_CLOSE)
        source = self.text[self.start : end]
        return Placeholder(root, path, constant, tuple(filters), self.start + 1, source), end

    def _tokenize(self, pos: int) -> list[_Token]:
        tokens: list[_Token] = []
        while True:
            if pos >= len(self.text):
                raise self.fail_at(self.start, f"unclosed '{_OPEN}' (no '{_CLOSE}' follows)")
            m = _TOKEN.match(self.text, pos)
            if m is None:
                raise self.fail_at(pos, self._unexpected(pos))
            kind, pos = m.lastgroup or "", m.end()
            if kind == "close":
                tokens.append(_Token("close", m.group(), m.start()))
                return tokens
            if kind != "ws":
                tokens.append(_Token(kind, m.group(), m.start()))

    def _unexpected(self, pos: int) -> str:
        char = self.text[pos]
        if char in "'\"":
            return "unterminated string"
        if char == "." and pos > 0 and not self.text[pos - 1].isspace():
            return "bad path: a segment after '.' must be a name or an integer index"
        if char == "{":
            return f"'{_OPEN}' cannot nest inside a placeholder"
        return f"unexpected {char!r}"

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += min(1, len(self.tokens) - 1 - self.i)  # stay on the final 'close'
        return token

    def expect(self, kind: str, text: str | None = None, *, what: str) -> _Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            raise self.fail_at(token.start, f"expected {what}, got {token.text!r}")
        return self.take()

    def expr(self) -> tuple[str | None, tuple[str, ...], str, list[Filter]]:
        """A literal, or a path with an optional string method call and ``[key]``
        subscripts after it (the steps, applied before any ``|`` filter)."""
        token = self.peek()
        if token.kind == "close":
            raise self.fail_at(self.start, "empty placeholder: write {{ path }}")
        if token.kind == "str":
            self.take()
            return None, (), _unquote(token.text), []
        if token.kind != "path":
            raise self.fail_at(token.start, f"expected a path like state.x, got {token.text!r}")
        self.take()
        steps: list[Filter] = []
        if self.peek().text == "(":
            token, method = self.method(token)
            steps.append(method)
        root, path, constant = self.path(token)
        while self.peek().text == "[":
            steps.append(self.subscript())
        return root, path, constant, steps

    def method(self, token: _Token) -> tuple[_Token, Filter]:
        """Split ``a.b.split`` followed by ``(`` into the path and the method call."""
        path, _, name = token.text.rpartition(".")
        column = token.start + len(path) + 1
        if not path:
            raise self.fail_at(self.peek().start, "function calls are not supported")
        if name not in METHOD_ARITY:
            known = ", ".join(sorted(METHOD_ARITY))
            raise self.fail_at(
                column, f"method {name!r} is not supported (string methods: {known})"
            )
        args = self.args()
        low, high = METHOD_ARITY[name]
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise self.fail_at(column, f"method {name!r} takes {count} arguments, got {len(args)}")
        if any(a is not None and not isinstance(a, str) for a in args[:1]):
            raise self.fail_at(column, f"method {name!r} takes a string (or null) first")
        if len(args) == 2 and (type(args[1]) is not int):
            raise self.fail_at(column, f"method {name!r} takes an integer count second")
        return _Token("path", path, token.start), Filter(name, args, column + 1)

    def subscript(self) -> Filter:
        """``[0]``, ``[-1]`` or ``['key']``: an item of a list or string, a key of a mapping."""
        opening = self.take()
        key = self.literal()
        if type(key) is not int and not isinstance(key, str):
            raise self.fail_at(opening.start, "a subscript takes an integer or a string")
        self.expect("op", "]", what="']'")
        return Filter(SUBSCRIPT, (key,), opening.start + 1)

    def path(self, token: _Token) -> tuple[str, tuple[str, ...], str]:
        segments = token.text.split(".")
        offset = token.start
        for seg in segments:
            if seg in RESERVED_NAMES:
                raise self.fail_at(offset, f"{seg!r} is a reserved name")
            offset += len(seg) + 1
        if segments[0] in ROOTS:
            return segments[0], tuple(segments[1:]), ""
        return "state", tuple(segments), ""

    def filter(self) -> Filter:
        token = self.expect("path", what="a filter name")
        if token.text not in FILTER_ARITY:
            known = ", ".join(sorted(FILTER_ARITY))
            raise self.fail_at(token.start, f"unknown filter {token.text!r}; known: {known}")
        args = self.args() if self.peek().text == "(" else ()
        low, high = FILTER_ARITY[token.text]
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            s = "" if count == "1" else "s"
            raise self.fail_at(
                token.start, f"filter {token.text!r} takes {count} argument{s}, got {len(args)}"
            )
        if token.text == "join" and args and not isinstance(args[0], str):
            raise self.fail_at(token.start, "filter 'join' takes a string separator")
        return Filter(token.text, args, token.start + 1)

    def args(self) -> tuple[Any, ...]:
        self.take()  # '('
        args: list[Any] = []
        while self.peek().text != ")":
            if args:
                self.expect("op", ",", what="',' or ')'")
            args.append(self.literal())
        self.take()
        return tuple(args)

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "str":
            return _unquote(token.text)
        if token.kind == "num":
            return self.number(token)
        if token.kind == "path" and token.text in _WORDS:
            return _WORDS[token.text]
        raise self.fail_at(
            token.start,
            f"expected a literal (string, number, true, false, null), got {token.text!r}",
        )

    def number(self, token: _Token) -> int | float:
        value = float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
        if not math.isfinite(value):
            raise self.fail_at(token.start, f"number {token.text!r} is out of range")
        return value

    def fail_at(self, offset: int, reason: str) -> TemplateError:
        snippet = self.text[self.start : self.start + _SNIPPET]
        more = "..." if len(self.text) > self.start + _SNIPPET else ""
        return TemplateError(f"{reason} in {snippet!r}{more}", offset + 1)


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), body, flags=re.S)
