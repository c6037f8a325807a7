"""CURVE keys for the worker port: who the engine is, and which workers it lets in (I14).

The engine has a key pair and a directory of the public keys of the workers it accepts; each
worker has its own key pair and the engine's public key. Key files are ZeroMQ certificates, as
``zmq.auth.create_certificates`` (or :func:`generate`) writes them: ``NAME.key`` holds the public
key (share it), ``NAME.key_secret`` the pair (keep it on its machine, readable by its owner).

From a shell: ``python -m tether.fleet.keys keys engine worker-1`` writes both pairs.

Example::

    generate("keys", "engine")                  # keys/engine.key, keys/engine.key_secret
    generate("keys/workers", "worker-1")
    engine = EngineKeys.from_files("keys/engine.key_secret", "keys/workers")
    worker = WorkerKeys.from_files("keys/workers/worker-1.key_secret", "keys/engine.key")
"""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from tether.errors import TetherError

__all__ = [
    "EngineKeys",
    "InsecureEndpoint",
    "KeyFileError",
    "WorkerKeys",
    "beyond_loopback",
    "generate",
]


class KeyFileError(TetherError, ValueError):
    """A key file or directory that cannot be used; says which and why."""


class InsecureEndpoint(TetherError, ValueError):
    """The worker port would listen beyond this machine without worker authentication."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(
            f"the worker port {endpoint} listens beyond this machine without worker keys: give "
            "the engine's key pair and the directory of the workers' public keys, or bind "
            "127.0.0.1"
        )
        self.endpoint = endpoint


@dataclass(frozen=True, repr=False)
class EngineKeys:
    """The engine's CURVE key pair and the public keys (z85) of the workers it accepts."""

    public: bytes
    secret: bytes
    workers: frozenset[bytes]

    def __repr__(self) -> str:  # never print a secret key by accident
        return f"EngineKeys(public={self.public.decode()!r}, workers={len(self.workers)})"

    @classmethod
    def from_files(cls, secret_file: str | os.PathLike[str], workers_dir: str | os.PathLike[str]
                   ) -> EngineKeys:  # fmt: skip
        """Load the engine's ``.key_secret`` file and every ``*.key`` in ``workers_dir``.

        Example::

            EngineKeys.from_files("keys/engine.key_secret", "keys/workers")
        """
        public, secret = _key_pair(secret_file)
        folder = Path(workers_dir)
        if not folder.is_dir():
            raise KeyFileError(f"worker keys directory {str(folder)!r} does not exist")
        try:
            workers = frozenset(zmq.auth.load_certificates(folder))
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"cannot read the worker keys in {str(folder)!r}: {exc}") from None
        if not workers:
            raise KeyFileError(
                f"worker keys directory {str(folder)!r} holds no public key (*.key): no worker "
                "could join"
            )
        return cls(public, secret, workers)


@dataclass(frozen=True, repr=False)
class WorkerKeys:
    """A worker's CURVE key pair and the public key of the engine it trusts."""

    public: bytes
    secret: bytes
    engine: bytes

    def __repr__(self) -> str:
        return f"WorkerKeys(public={self.public.decode()!r}, engine={self.engine.decode()!r})"

    @classmethod
    def from_files(cls, secret_file: str | os.PathLike[str], engine_file: str | os.PathLike[str]
                   ) -> WorkerKeys:  # fmt: skip
        """Load the worker's ``.key_secret`` file and the engine's public ``.key`` file.

        Example::

            WorkerKeys.from_files("worker-1.key_secret", "engine.key")
        """
        public, secret = _key_pair(secret_file)
        engine, _ = _load(engine_file)
        return cls(public, secret, engine)


def generate(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write a new key pair as ``NAME.key`` (public) and ``NAME.key_secret`` (owner-only).

    Example::

        public, secret = generate("keys", "worker-1")
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(folder, name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def beyond_loopback(endpoint: str) -> bool:
    """True when a bound ``endpoint`` can be reached from another machine.

    ``ipc://`` and ``inproc://`` stay on this machine; ``tcp://`` does unless its host is a
    loopback address or ``localhost`` (``*``, ``0.0.0.0``, an interface or a name do not).

    Example::

        beyond_loopback("tcp://127.0.0.1:7701")     # False
        beyond_loopback("tcp://*:7701")             # True
    """
    transport, _, rest = endpoint.partition("://")
    if transport not in ("tcp", "ws", "wss", "udp", "pgm", "epgm", "norm", "tipc", "vmci"):
        return False  # ipc, inproc: local by construction
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _load(path: str | os.PathLike[str]) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {str(path)!r}: {exc}") from None
    if len(public) != 40:
        raise KeyFileError(f"key file {str(path)!r} holds no CURVE public key")
    return public, secret


def _key_pair(path: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    public, secret = _load(path)
    if not secret:
        raise KeyFileError(
            f"key file {str(path)!r} holds no secret key: give the NAME.key_secret file, "
            "not NAME.key"
        )
    try:
        derived = zmq.curve_public(secret)
    except zmq.ZMQError as exc:
        raise KeyFileError(f"key file {str(path)!r}: not a CURVE secret key ({exc})") from None
    if derived != public:
        raise KeyFileError(f"key file {str(path)!r}: its public and secret keys do not match")
    return public, secret


def _main(argv: list[str]) -> int:
    """``python -m tether.fleet.keys DIR NAME [NAME ...]``: one key pair per NAME in DIR."""
    if len(argv) < 2:
        print("usage: python -m tether.fleet.keys DIR NAME [NAME ...]", file=sys.stderr)
        return 2
    for name in argv[1:]:
        public, secret = generate(argv[0], name)
        print(f"{public} (public: share it)  {secret} (secret: keep it on its machine)")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
