"""Tokenizer and parser of the condition language, producing a small AST.

The language is deliberately tiny and closed: state paths (with ``['key']`` and ``[0]``
subscripts of literal keys), literals, comparisons, ``in``, ``is``, ``and``/``or``/``not``,
parentheses, list literals and one function, ``len(...)``. There is no other call, no
attribute access on Python objects and no arithmetic, so nothing a workflow author writes can
reach Python builtins. ``tether.ir.conditions`` compiles the AST into closures.

Example::

    >>> parse("state.score >= 0.5 and tier in ['gold', 'silver']").op
    'and'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tether.ir.errors import ConditionSyntaxError

#: Nesting of parentheses, lists and ``not`` together: the parser and the compiled closures
#: recurse once per level, so this keeps them far from Python's recursion limit.
_MAX_DEPTH = 64

# Python special names are refused as path segments even though paths are only ever looked
# up in mappings: a condition must never *look* like it reaches interpreter internals.
# Other dunder-style names stay legal because the jamjet SDK uses keys like __cost_exceeded__.
RESERVED_NAMES = frozenset(
    {
        "__import__", "__builtins__", "__globals__", "__class__", "__subclasses__",
        "__mro__", "__bases__", "__base__", "__dict__", "__code__", "__closure__",
        "__func__", "__self__", "__module__", "__getattribute__", "__getattr__",
        "__init__", "__new__", "__call__", "__loader__", "__spec__", "__reduce__",
        "__reduce_ex__", "__setattr__", "__delattr__", "__init_subclass__", "__file__",
        "__name__", "__qualname__", "__defaults__", "__kwdefaults__", "__annotations__",
    }
)  # fmt: skip

KEYWORDS = {"and", "or", "not", "in", "is"}
CONSTANTS: dict[str, Any] = {
    "true": True, "false": False, "null": None,
    "True": True, "False": False, "None": None,
}  # fmt: skip

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*"
_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<num>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<path>{_NAME}(?:\.(?:{_NAME}|\d+))*)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_HINTS = {
    "=": "use '==' to compare",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not' or '!='",
    "'": "unterminated string",
    '"': "unterminated string",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, path, op, kw, const, end
    text: str
    start: int  # 0-based offset into the source


@dataclass(frozen=True, slots=True)
class Node:
    """An AST node. ``op`` is 'lit', 'path', 'list', 'len', 'not', 'and', 'or' or a
    comparison.

    ``and`` and ``or`` hold every operand of a chain (``a and b and c`` has three args), so
    a long chain is a wide node, not a deep tree."""

    op: str
    start: int
    end: int
    value: Any = None  # literal value, or the tuple of path segments
    args: tuple[Node, ...] = ()


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            ch = source[pos]
            raise ConditionSyntaxError(source, pos + 1, _HINTS.get(ch, f"unexpected {ch!r}"))
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "path":
            if text in KEYWORDS:
                kind = "kw"
            elif text in CONSTANTS:
                kind = "const"
        if kind != "ws":
            tokens.append(Token(kind, text, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def _unquote(text: str) -> str:
    out: list[str] = []
    i = 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            out.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _number(text: str) -> int | float:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return float(text)


def _is_singleton(node: Node) -> bool:
    return node.op == "lit" and any(node.value is v for v in (None, True, False))


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, reason: str, tok: Token | None = None) -> ConditionSyntaxError:
        t = tok or self.tok
        return ConditionSyntaxError(self.source, t.start + 1, reason)

    def take(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def parse(self) -> Node:
        if self.at("end"):
            raise self.fail("empty condition")
        node = self.or_expr()
        if not self.at("end"):
            raise self.fail(f"unexpected {self.tok.text!r}")
        return node

    def _chain(self, word: str, operand: Any) -> Node:
        operands: list[Node] = [operand()]
        while self.at("kw", word):
            self.take()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        return Node(word, operands[0].start, operands[-1].end, args=tuple(operands))

    def or_expr(self) -> Node:
        return self._chain("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._chain("and", self.not_expr)

    def not_expr(self) -> Node:
        if self.at("kw", "not"):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.fail("condition is nested too deeply ('not' repeated too often)")
            t = self.take()
            operand = self.not_expr()
            self.depth -= 1
            return Node("not", t.start, operand.end, args=(operand,))
        return self.comparison()

    def comparison(self) -> Node:
        left = self.primary()
        op = self._comparison_op()
        if op is None:
            return left
        right = self.primary()
        if op in ("is", "is not") and not _is_singleton(right):
            raise ConditionSyntaxError(
                self.source, right.start + 1, "'is' must be followed by null, true or false"
            )
        if self._comparison_op(peek=True) is not None:
            raise self.fail("chained comparisons are not supported; combine them with 'and'")
        return Node(op, left.start, right.end, args=(left, right))

    def _comparison_op(self, peek: bool = False) -> str | None:
        t = self.tok
        op: str | None = None
        width = 1
        if t.kind == "op" and t.text in ("==", "!=", "<", "<=", ">", ">="):
            op = t.text
        elif t.kind == "kw" and t.text in ("in", "is"):
            op = t.text
            if t.text == "is" and self.tokens[self.i + 1].text == "not":
                op, width = "is not", 2
        elif t.kind == "kw" and t.text == "not" and self.tokens[self.i + 1].text == "in":
            op, width = "not in", 2
        if op is not None and not peek:
            self.i += width
        return op

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.take()
            return Node("lit", t.start, t.start + len(t.text), value=_number(t.text))
        if t.kind == "str":
            self.take()
            return Node("lit", t.start, t.start + len(t.text), value=_unquote(t.text))
        if t.kind == "const":
            self.take()
            return Node("lit", t.start, t.start + len(t.text), value=CONSTANTS[t.text])
        if t.kind == "path":
            return self.path()
        if t.kind == "op" and t.text in ("(", "["):
            return self.nested(t)
        if t.kind == "end":
            raise self.fail("expected a value, got the end of the condition")
        raise self.fail(f"expected a value, got {t.text!r}")

    def path(self) -> Node:
        t = self.take()
        segments = tuple(t.text.split("."))
        offset = t.start
        for seg in segments:
            if seg in RESERVED_NAMES:
                raise ConditionSyntaxError(self.source, offset + 1, f"{seg!r} is a reserved name")
            offset += len(seg) + 1
        if self.at("op", "("):
            if segments == ("len",):
                return self.length(t)
            raise self.fail("function calls are not supported (len(...) is the one function)")
        end = t.start + len(t.text)
        while self.at("op", "[") and self.tok.start == end:  # x['key'], x[0]: no space
            segment, end = self.subscript()
            segments = (*segments, segment)
        if len(segments) > 1 and segments[0] == "state":
            segments = segments[1:]  # 'state.x' and 'x' name the same key
        elif segments == ("state",):
            segments = ()  # the whole state
        return Node("path", t.start, end, value=segments)

    def subscript(self) -> tuple[str, int]:
        """A ``['key']`` or ``[0]`` after a path: one more segment (a literal, no expression)."""
        opener = self.take()
        key = self.tok
        if key.kind == "str":
            segment = _unquote(key.text)
        elif key.kind == "num" and re.fullmatch(r"\d+", key.text):
            segment = key.text
        else:
            raise self.fail("a subscript is a quoted key or a whole number, like x['a'] or x[0]")
        if segment in RESERVED_NAMES:
            raise self.fail(f"{segment!r} is a reserved name", key)
        self.take()
        close = self.expect("]", opener)
        return segment, close.start + 1

    def length(self, name: Token) -> Node:
        opener = self.take()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail("condition is nested too deeply")
        inner = self.or_expr()
        self.depth -= 1
        close = self.expect(")", opener)
        return Node("len", name.start, close.start + 1, args=(inner,))

    def nested(self, opener: Token) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail("condition is nested too deeply")
        self.take()
        if opener.text == "(":
            inner = self.or_expr()
            close = self.expect(")", opener)
            node = Node(inner.op, opener.start, close.start + 1, inner.value, inner.args)
        else:
            items: list[Node] = []
            while not self.at("op", "]"):
                items.append(self.or_expr())
                if not self.at("op", ","):
                    break
                self.take()
            close = self.expect("]", opener)
            node = Node("list", opener.start, close.start + 1, args=tuple(items))
        self.depth -= 1
        return node

    def expect(self, text: str, opener: Token) -> Token:
        if not self.at("op", text):
            got = "the end of the condition" if self.at("end") else repr(self.tok.text)
            raise self.fail(f"expected {text!r} to close {opener.text!r}, got {got}")
        return self.take()


def parse(source: str) -> Node:
    """Parse ``source`` into an AST, raising ``ConditionSyntaxError`` with a column."""
    return _Parser(source).parse()
