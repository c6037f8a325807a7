"""``${NAME}`` in an ``http`` node's header values and URL query: resolved only where the call
runs, and taken back out of everything the call says (its result, its errors).

``${NAME}`` is the secret source's NAME, else the environment variable NAME;
``${secret:NAME}`` is the secret source's only, as a secret reference anywhere else in Tether.
The node's arguments are journaled, so they hold placeholders, never values (I14).

Example::

    filled = fill_text("Bearer ${API_TOKEN}", "headers.Authorization", lookup)
    filled.text                               # 'Bearer tok-123'
    Scrubber.of(filled.used).text("echo tok-123")   # 'echo ${API_TOKEN}'
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, quote_plus

from tether.agents.http_node.errors import HttpArgsError
from tether.runtime.secrets import SecretSource

__all__ = [
    "PLACEHOLDER",
    "Filled",
    "Lookup",
    "Scrubber",
    "fill_text",
    "lookup_in",
    "quote_value",
]

#: A placeholder: ``${NAME}`` or ``${secret:NAME}``, NAME as in a secret reference.
PLACEHOLDER: Final = re.compile(r"\$\{(secret:)?([A-Za-z_][A-Za-z0-9_]{0,127})\}")

#: The value of a placeholder, given its NAME and whether it is ``${secret:NAME}``; or None.
Lookup = Callable[[str, bool], "str | None"]


def lookup_in(secrets: SecretSource | None, environ: Mapping[str, str]) -> Lookup:
    """Where placeholders are looked up: ``secrets`` first, then ``environ`` (not for
    ``${secret:NAME}``). An empty value counts as none: replacing "" would scrub everything.

    Example::

        lookup_in(None, {"API_TOKEN": "tok"})("API_TOKEN", False)     # 'tok'
    """

    def lookup(name: str, secret_only: bool) -> str | None:
        value = secrets.secret(name) if secrets is not None else None
        if not value and not secret_only:
            value = environ.get(name)
        return value or None

    return lookup


@dataclass(frozen=True, slots=True)
class Filled:
    """A text with its placeholders replaced, and the values used, by placeholder."""

    text: str
    used: dict[str, str]


def fill_text(text: str, where: str, lookup: Lookup, encode: Callable[[str], str] = str) -> Filled:
    """``text`` with each placeholder replaced by ``encode(value)``; a placeholder without a
    value is an HttpArgsError naming it and ``where`` it is (never a value).

    Example::

        fill_text("k=${KEY}", "url", lookup, encode=quote_value).text    # 'k=a%2Fb'
    """
    used: dict[str, str] = {}

    def value_of(match: re.Match[str]) -> str:
        placeholder, secret_only, name = match.group(0), bool(match.group(1)), match.group(2)
        value = lookup(name, secret_only)
        if value is None:
            source = "secret" if secret_only else "secret or environment variable"
            message = f"{placeholder} has no value here (no {source} {name})"
            raise HttpArgsError(f"http: {where}: {message}")
        used[placeholder] = value
        return encode(value)

    return Filled(PLACEHOLDER.sub(value_of, text), used)


def quote_value(value: str) -> str:
    """A value as it goes in a URL query: every reserved character escaped, so a value with
    ``&`` or ``#`` in it stays one value."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class Scrubber:
    """Takes resolved values back out of text: each value, in the forms it is echoed in
    (raw, URL-escaped, JSON-escaped), becomes the placeholder it came from.

    Example::

        Scrubber.of({"${KEY}": "a/b"}).text("got a%2Fb")       # 'got ${KEY}'
    """

    #: (form of a value, its placeholder), longest form first: one value may hold another.
    swaps: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, used: Mapping[str, str]) -> Scrubber:
        """A scrubber of the values in ``used`` (placeholder to value)."""
        swaps: dict[str, str] = {}
        for placeholder, value in used.items():
            for form in _forms(value):
                swaps.setdefault(form, placeholder)
        return cls(tuple(sorted(swaps.items(), key=lambda swap: -len(swap[0]))))

    def text(self, text: str) -> str:
        """``text`` with every form of every value replaced by its placeholder."""
        for form, placeholder in self.swaps:
            if form in text:
                text = text.replace(form, placeholder)
        return text

    def value(self, value: Any) -> Any:
        """A JSON value with every string in it (keys too, nested) scrubbed."""
        if not self.swaps:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


def _forms(value: str) -> set[str]:
    # A server echoing the value may escape it for a URL or JSON, non-ASCII as \u or not.
    as_json = {json.dumps(value, ensure_ascii=escape)[1:-1] for escape in (True, False)}
    return {value, quote_value(value), quote_plus(value), *as_json} - {""}
