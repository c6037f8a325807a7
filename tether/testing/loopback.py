"""A free TCP port on 127.0.0.1 for a server a test starts, chosen outside the kernel's
ephemeral range.

``bind(("127.0.0.1", 0))`` hands out an ephemeral port, and the same range serves every
outgoing connection: between the probe closing and the server binding, another process's
client socket (a Postgres connection, an HTTP client) can take it, and the server fails with
"Address already in use". A port below the ephemeral range is only ever taken by something
that binds it on purpose, so a probe that binds it is a reliable answer.

Example::

    port = free_loopback_port()
    subprocess.Popen(["tether", "dev", "--port", str(port)])
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Linux's default ephemeral range: used where the kernel does not say (macOS: 49152-65535).
_DEFAULT_EPHEMERAL = (32768, 60999)
_LOWEST = 10000
_TRIES = 200


def free_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing holds now and no outgoing connection will take."""
    low, high = _ephemeral_range()
    # A random pick keeps parallel test processes apart; the bind probe keeps held ports out.
    candidates = [p for p in range(_LOWEST, 65536) if not low <= p <= high]
    picker = random.SystemRandom()
    for _ in range(_TRIES):
        port = picker.choice(candidates)
        if _bindable(port):
            return port
    return _ephemeral_port()  # everything probed was held: fall back to the kernel's choice


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
