"""Who a bearer token speaks for: the shared ``TETHER_TOKEN`` (anyone who holds it) and named
tokens from ``TETHER_TOKENS_FILE``, each standing for one user with roles.

A caller authenticated by a named token *is* that user: an approval it sends is recorded
under the token's user id, never under one its body claims. The file has one token a line::

    # user_id[:role,role]  token
    alice:finance,ops      hT3v...24-random-chars...
    bob                    Qm9a...another-token.....

Blank lines and ``#`` comments are skipped; every token is 16+ printable ASCII characters and
unique (also unlike ``TETHER_TOKEN``); user ids and roles follow :mod:`tether.ir.approvers`.

Example::

    keys = ApiKeys("shared-token-of-16+", parse_tokens_file(text, "tokens.txt"))
    keys.caller(["Bearer hT3v..."])     # Caller(user_id='alice', roles=('finance', 'ops'))
    keys.caller(["Bearer shared-token-of-16+"])   # None: the shared token names nobody
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final

from tether.errors import TetherError
from tether.ir.approvers import user_id_problem

#: A shorter bearer token is refused at start: it could be guessed.
MIN_TOKEN_CHARS: Final = 16
SCHEME: Final = "bearer"


class TokensFileError(TetherError, ValueError):
    """A line of the tokens file that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class Caller:
    """The user a named token stands for."""

    user_id: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class NamedToken:
    caller: Caller
    token: str


def token_shape_problem(token: str, what: str) -> str | None:
    """Why ``token`` is too weak or cannot travel in an HTTP header, or None."""
    if len(token) < MIN_TOKEN_CHARS:
        return (
            f"{what} is {len(token)} characters: use at least {MIN_TOKEN_CHARS} (for example: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if not all("!" <= c <= "~" for c in token):
        return f"{what} must be printable ASCII without spaces (HTTP headers carry nothing else)"
    return None


def parse_tokens_file(text: str, source: str) -> tuple[NamedToken, ...]:
    """The named tokens of a tokens file's ``text``; TokensFileError names ``source`` and the
    line of the first problem (never the token itself: error messages end up in logs)."""
    out: list[NamedToken] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        parts = line.split()
        if len(parts) != 2:
            raise TokensFileError(f"{where}: expected 'user_id[:role,role] token'")
        who, token = parts
        user_id, _, role_text = who.partition(":")
        roles = tuple(r for r in role_text.split(",") if r) if role_text else ()
        for name in (user_id, *roles):
            problem = user_id_problem(name)
            if problem is not None:
                raise TokensFileError(f"{where}: {name!r}: {problem}")
        problem = token_shape_problem(token, "the token")
        if problem is not None:
            raise TokensFileError(f"{where}: {problem}")
        if token in seen:
            raise TokensFileError(f"{where}: this token is already given to another line")
        seen.add(token)
        out.append(NamedToken(Caller(user_id, roles), token))
    return tuple(out)


class ApiKeys:
    """The tokens that admit a caller: the shared one (optional) and named ones."""

    def __init__(self, shared: str | None, named: tuple[NamedToken, ...] = ()) -> None:
        self._shared = shared.encode() if shared else None
        self._named = [(n.token.encode(), n.caller) for n in named]

    @property
    def required(self) -> bool:
        """Must a caller send a token at all? (No token configured: loopback development.)"""
        return self._shared is not None or bool(self._named)

    def problem(self, given: list[str]) -> str | None:
        """Why the ``Authorization`` header values ``given`` admit nobody, or None."""
        if not self.required or self._match(given)[0]:
            return None
        if len(given) > 1:
            return "send one Authorization header, not several"
        return "missing or wrong token: send 'Authorization: Bearer <token>'"

    def has_named(self, user_id: str) -> bool:
        """Does a named token stand for ``user_id``? (Then only that token speaks for them.)"""
        return any(caller.user_id == user_id for _, caller in self._named)

    def caller(self, given: list[str]) -> Caller | None:
        """The user a named token in ``given`` stands for; None for the shared token (or no
        token configured): such a caller names nobody in particular."""
        return self._match(given)[1]

    def _match(self, given: list[str]) -> tuple[bool, Caller | None]:
        """Is a configured token in ``given``, and whose is it? One header only: proxies and
        servers disagree about which of several counts."""
        if len(given) != 1:
            return False, None
        scheme, _, credentials = given[0].strip().partition(" ")
        if scheme.lower() != SCHEME:
            return False, None
        sent = credentials.strip().encode()
        # Every token is compared, in constant time each: the time taken says nothing about
        # which token (or how much of one) a guess got right.
        found: Caller | None = None
        ok = self._shared is not None and hmac.compare_digest(sent, self._shared)
        for token, caller in self._named:
            if hmac.compare_digest(sent, token):
                ok, found = True, caller
        return ok, found
