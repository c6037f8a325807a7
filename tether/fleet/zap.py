"""The worker port's gatekeeper: CURVE on the ROUTER and a ZAP handler that admits known keys.

ZeroMQ runs the CURVE handshake in its I/O thread and asks the ZAP handler (RFC 27) whether the
client's public key may connect; a key not in :attr:`EngineKeys.workers` is refused before the
connection carries any message. An admitted connection's messages carry the key (z85) as their
``User-Id`` property: the broker uses it as the peer's principal, so a worker id is bound to the
key that registered it.

The handler is pyzmq's :class:`~zmq.auth.thread.ThreadAuthenticator`, on its own thread: the
handshakes of a connection flood cost that thread, not the engine's event loop.

Example::

    ctx = zmq.Context()
    with curve_server(ctx, sock, keys):
        sock.bind("tcp://0.0.0.0:7701")
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import zmq
from zmq.auth.thread import ThreadAuthenticator

from tether.fleet.keys import EngineKeys, WorkerKeys

__all__ = ["ZAP_DOMAIN", "curve_client", "curve_server"]

#: The ZAP domain of the worker port (the handler answers only for it).
ZAP_DOMAIN: Final = "tether-fleet"

log = logging.getLogger(__name__)


class _KnownKeys:
    """pyzmq's credentials provider: admits exactly the configured worker keys."""

    def __init__(self, keys: EngineKeys) -> None:
        self._workers = keys.workers

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = key in self._workers  # pyzmq asks only for the domain it was configured for
        if not allowed:
            log.warning("worker port: refused a connection with unknown key %s", key.decode())
        return allowed


@contextmanager
def curve_server(
    context: zmq.Context[zmq.Socket[bytes]], sock: zmq.Socket[bytes], keys: EngineKeys
) -> Iterator[None]:
    """Make ``sock`` a CURVE server admitting ``keys.workers``, for the ``with`` block.

    Call before binding. One ZAP handler per context: a second one would not get requests.
    """
    auth = ThreadAuthenticator(context, log=logging.getLogger("tether.fleet.zap.pyzmq"))
    auth.start()
    try:
        auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=_KnownKeys(keys))
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
        sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
        yield
    finally:
        auth.stop()


def curve_client(sock: zmq.Socket[bytes], keys: WorkerKeys) -> None:
    """Make ``sock`` a CURVE client of the engine ``keys.engine`` (call before connecting)."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.engine)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
