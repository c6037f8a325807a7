"""Lease tokens of the HTTP worker protocol: the work-item ``id`` a polling worker is handed
with its lease and presents to heartbeat, complete or fail it, signed by the engine so that
nobody else can make one up (I5, I14).

A token is ``base64url(msgpack([work_item_id, fence, owner])) "." base64url(mac)``, where the
mac is HMAC-SHA256 of the payload under the engine's lease key, checked in constant time. The
payload alone is guessable (ids are in the API, owners in ``GET /workers``): the mac is what
says the engine handed this lease to this worker.

The key is never written to the database (whoever can read the journal must not be able to
mint tokens), and it is not the API's bearer token either: every HTTP worker holds that one,
and a key derived from it would let any worker sign another worker's lease. With
``TETHER_LEASE_KEY`` set (a secret only the engine has) it is derived from that, so it is the
same after a restart: a worker's token from before the restart still reports (a completion
resent after the restart is answered from the work item's row). Without it the key is random
per engine start: a token from before a restart is refused with a reason that says so, and
the step's lease is reclaimed and the step runs again.

Example::

    key = LeaseKey.for_engine(config.lease_key)
    token = key.sign("exec_1/double/1", 3, "http/w1")
    key.verify(token)          # LeaseRef("exec_1/double/1", 3, "http/w1")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Final

import msgspec

from tether.errors import TetherError

#: Owner names of HTTP workers in the scheduler: never the same as a ZeroMQ worker's id.
OWNER_PREFIX: Final = "http/"
#: The context of the key derived from ``TETHER_LEASE_KEY``: the secret itself never signs.
_KEY_LABEL: Final = b"tether/http-worker-lease-token/v1"


class LeaseNotFound(TetherError, LookupError):
    """A work-item id that is not a lease token (404)."""


class LeaseRefused(TetherError):
    """A report or heartbeat for a lease that is no longer live, or a token this engine did
    not sign (409, with the reason)."""


class LeaseRef(msgspec.Struct, array_like=True, frozen=True):
    """The lease a token names."""

    work_item_id: str
    fence: int
    owner: str


class LeaseKey:
    """The engine's key for lease tokens. ``durable``: the same after an engine restart."""

    def __init__(self, key: bytes, *, durable: bool) -> None:
        if len(key) < 32:
            raise ValueError("a lease key needs at least 32 bytes")
        self._key = key
        self.durable = durable

    @classmethod
    def for_engine(cls, secret: str | None) -> LeaseKey:
        """Derived from the engine's lease secret (``TETHER_LEASE_KEY``), else random."""
        if secret:
            derived = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
            return cls(derived, durable=True)
        return cls(os.urandom(32), durable=False)

    def sign(self, work_item_id: str, fence: int, owner: str) -> str:
        payload = msgspec.msgpack.encode(LeaseRef(work_item_id, fence, owner))
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str) -> LeaseRef:
        """The lease ``token`` names; raises LeaseNotFound for what is not a token at all and
        LeaseRefused for a token this engine (with this key) did not sign."""
        head, dot, tail = token.partition(".")
        try:
            payload, mac = _unb64(head), _unb64(tail)
        except (binascii.Error, ValueError):
            raise _not_a_token(token) from None
        if not dot or not payload or not mac:
            raise _not_a_token(token)
        if not hmac.compare_digest(mac, self._mac(payload)):  # constant time
            raise LeaseRefused(
                f"{token[:80]!r} is not a lease this engine handed out: its signature does not "
                "match. A token from before an engine restart is refused when the engine has no "
                "TETHER_LEASE_KEY to derive its lease key from; that lease is reclaimed and the "
                "step runs again"
            )
        try:
            ref = msgspec.msgpack.decode(payload, type=LeaseRef)
        except msgspec.DecodeError:
            raise _not_a_token(token) from None
        # Signed, but only ever for an HTTP worker: checked anyway, so a key shared with
        # another signer could never let a request act for the pool or a ZeroMQ worker.
        if not ref.owner.startswith(OWNER_PREFIX) or not valid_worker_id(
            ref.owner.removeprefix(OWNER_PREFIX)
        ):
            raise _not_a_token(token)
        return ref

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def valid_worker_id(worker_id: str) -> bool:
    return 0 < len(worker_id) <= 200 and worker_id.isprintable()


def _not_a_token(token: str) -> LeaseNotFound:
    return LeaseNotFound(
        f"{token[:80]!r} is not a work item id this engine handed out (ids come from "
        "POST /work-items/claim)"
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
