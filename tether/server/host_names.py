"""The names this engine answers to, and whether a request's ``Host`` or ``Origin`` is one.

A web page the user visits can make the browser send requests to ``127.0.0.1``: with a name
it controls that resolves there (DNS rebinding, seen in ``Host``), or from its own origin
(seen in ``Origin``). Checking both against the names the server was started under shuts out
both without getting in the way of a CLI, an SDK or curl, which send the address they dialled.

Loopback names and the bind address are admitted on the bound port; names the user allows
(``TETHER_ALLOWED_HOSTS``, for a reverse proxy or a machine name) on any port.

Example::

    hosts = AllowedHosts.for_server("127.0.0.1", 7700, allowed=("tether.internal",))
    hosts.admits_host("localhost:7700")                   # True
    hosts.admits_origin("http://rebind.evil.example")     # False
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")
#: A wildcard bind listens on every address; it names none of them.
_WILDCARDS: Final = frozenset({"0.0.0.0", "[::]"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AllowedHosts:
    """Names admitted on ``port`` (loopback and the bind address), names admitted on any
    port (the user's), or everything (``"*"`` among the user's names)."""

    port: int
    on_port: frozenset[str]
    any_port: frozenset[str]
    anything: bool = False

    @classmethod
    def for_server(cls, bind: str, port: int, allowed: tuple[str, ...] = ()) -> AllowedHosts:
        bound = {_bracketed(bind.lower())} - _WILDCARDS
        return cls(
            port=port,
            on_port=frozenset({*LOOPBACK_NAMES, *bound}),
            any_port=frozenset(_bracketed(a) for a in allowed if a != "*"),
            anything="*" in allowed,
        )

    def admits_host(self, host: str) -> bool:
        """Whether a ``Host`` header (``name``, ``name:port``, ``[v6]:port``) is one of ours."""
        return self.anything or self._admits(*_split_host(host.strip().lower()))

    def admits_origin(self, origin: str) -> bool:
        """Whether an ``Origin`` header (``scheme://name[:port]``, or ``null``) is ours."""
        if self.anything:
            return True
        try:
            parts = urlsplit(origin.strip().lower())
            if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
                return False
            name = _bracketed(parts.hostname)
            return self._admits(name, parts.port or _DEFAULT_PORTS[parts.scheme])
        except ValueError:  # a port that is not a number
            return False

    def describe(self) -> str:
        """The admitted names, for a refusal's message."""
        names = [f"{n}:{self.port}" for n in sorted(self.on_port)] + sorted(self.any_port)
        return ", ".join(names)

    def _admits(self, name: str, port: int | None) -> bool:
        if name in self.any_port:
            return True
        return name in self.on_port and port == self.port


def _split_host(host: str) -> tuple[str, int | None]:
    """``name`` and port of a Host header (80 when it names none; None when it is not a port)."""
    if host.startswith("["):
        name, closed, rest = host.partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return "", None
        name, port_text = name + "]", rest[1:] if rest else None
    elif ":" in host:
        name, _, port_text = host.partition(":")  # a second colon leaves no valid port
    else:
        name, port_text = host, None
    if port_text is None:
        return name, _DEFAULT_PORTS["http"]
    valid = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
    return name, int(port_text) if valid else None


def _bracketed(name: str) -> str:
    """IPv6 addresses as they appear in a Host header: in brackets."""
    try:
        if ipaddress.ip_address(name.strip("[]")).version == 6:
            return f"[{name.strip('[]')}]"
    except ValueError:
        pass
    return name
