"""Large values out of a payload and back: the journal's side of the artifact store.

A payload (a journal record or a snapshot, msgpack) whose size passes the threshold has each
large value at the places its owner names (those typed ``Any``) replaced by a reference: a
msgpack extension of type :data:`REF_CODE` holding the 32-byte SHA-256 of the value's own
msgpack encoding, which becomes an artifact. The payload's top-level map stays (its type and
small fields remain readable in the row); values are split out innermost first, so a large
document inside a node's output is one artifact wherever it sits (the output that carried it,
the next input, the snapshot's state), stored once. Artifacts never hold references
themselves: a sweep needs only the journal and snapshots to know what is referenced.

:func:`resolved` puts the values back. The bytes may differ from the original payload's (a
generic msgpack round trip), but they decode to an equal record: replay sees what the live
fold saw (I2).

Example::

    small, blobs = spilled(payload, 8192, [("output",)])   # blobs: the artifacts to write first
    assert decode(resolved(small, blobs)) == decode(payload)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

#: The msgpack extension type of a reference (an application code, 0-127; 'T').
REF_CODE: Final = 84
#: How a reference starts in a payload's bytes (ext 8, 32 bytes of data, REF_CODE): a sweep
#: and a read look for these bytes before decoding anything.
REF_MARKER: Final = bytes((0xC7, 32, REF_CODE))


class ArtifactRef:
    """A reference found in a payload: the artifact's digest (encoded back as a reference,
    so a payload spilled twice keeps the references it had)."""

    __slots__ = ("digest",)

    def __init__(self, digest: str) -> None:
        self.digest = digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactRef) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


def _enc_hook(value: Any) -> Any:
    if isinstance(value, ArtifactRef):
        return msgspec.msgpack.Ext(REF_CODE, bytes.fromhex(value.digest))
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_encode = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == REF_CODE and len(data) == 32:
        return ArtifactRef(bytes(data).hex())
    return msgspec.msgpack.Ext(code, bytes(data))


_decode = msgspec.msgpack.Decoder(ext_hook=_ext_hook).decode


#: Where in a payload a value may become a reference: a path of map keys (a list's position
#: as its decimal text), ``*`` for every key or position. Only places typed ``Any`` by the
#: payload's owner belong here: a reader decoding a row as it is stored (an audit bundle)
#: then finds an extension object where it takes anything, never where it wants a string.
Place = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpillPlaces:
    """Where large values may be in a store's payloads (their owner, the runtime, knows)."""

    records: tuple[Place, ...]
    snapshots: tuple[Place, ...]
    #: Bytes before a snapshot's msgpack (a format byte).
    snapshot_prefix: int = 0


def spilled(
    payload: bytes, threshold: int, places: Sequence[Place], prefix: int = 0
) -> tuple[bytes, dict[str, bytes]]:
    """``payload`` with each value at ``places`` larger than ``threshold`` bytes (encoded)
    replaced by a reference, and the artifacts those references name (digest -> bytes).
    ``prefix`` bytes at the start are not msgpack (a format byte) and are kept as they are.

    A payload at most ``threshold`` long is returned as it is, with no artifacts.
    """
    if len(payload) <= threshold:
        return payload, {}
    blobs: dict[str, bytes] = {}
    value = _decode(payload[prefix:])
    for place in places:
        value = _at_place(value, place, threshold, blobs)
    return payload[:prefix] + _encode(value), blobs


def _at_place(value: Any, place: Place, threshold: int, blobs: dict[str, bytes]) -> Any:
    if not place:
        return _spilled_value(value, threshold, blobs)
    step, rest = place[0], place[1:]
    if isinstance(value, dict):
        if step == "*":
            return {k: _at_place(v, rest, threshold, blobs) for k, v in value.items()}
        if step in value:
            return {**value, step: _at_place(value[step], rest, threshold, blobs)}
    elif isinstance(value, list):
        if step == "*":
            return [_at_place(v, rest, threshold, blobs) for v in value]
        if step.isdigit() and int(step) < len(value):
            at = int(step)
            return [*value[:at], _at_place(value[at], rest, threshold, blobs), *value[at + 1 :]]
    return value


def _spilled_value(value: Any, threshold: int, blobs: dict[str, bytes]) -> Any:
    encoded = _encode(value)
    if len(encoded) <= threshold:
        return value
    if isinstance(value, dict | list):
        # A large child is an artifact of its own (found again wherever it is copied);
        # what is left inline may be small enough now.
        mine: dict[str, bytes] = {}
        thinner = _children_spilled(value, threshold, mine)
        if mine and len(_encode(thinner)) <= threshold:
            blobs.update(mine)
            return thinner
    if _holds_reference(value):  # an artifact never does (and a reference stays one)
        if isinstance(value, dict | list):
            return _children_spilled(value, threshold, blobs)
        return value
    # Still large (many small parts): the whole value is one artifact, with no references
    # inside, so the children's artifacts computed above are not written.
    digest = hashlib.sha256(encoded).hexdigest()
    blobs[digest] = encoded
    return msgspec.msgpack.Ext(REF_CODE, bytes.fromhex(digest))


def _holds_reference(value: Any) -> bool:
    """Whether a decoded value is or contains a reference (a walk of its containers: no scan
    of a large string's bytes, which cost more than hashing them)."""
    if isinstance(value, ArtifactRef):
        return True
    if isinstance(value, dict):
        return any(_holds_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_reference(v) for v in value)
    return False


def _children_spilled(
    value: dict[Any, Any] | list[Any], threshold: int, blobs: dict[str, bytes]
) -> Any:
    if isinstance(value, dict):
        return {k: _spilled_value(v, threshold, blobs) for k, v in value.items()}
    return [_spilled_value(v, threshold, blobs) for v in value]


def references(payload: bytes) -> set[str]:
    """The digests ``payload`` may reference: every :data:`REF_MARKER` and the 32 bytes after
    it. A superset (bytes that only look like one count too), which is what a sweep needs: it
    never misses a reference."""
    found: set[str] = set()
    at = payload.find(REF_MARKER)
    while at >= 0:
        digest = payload[at + 3 : at + 35]
        if len(digest) == 32:
            found.add(digest.hex())
        at = payload.find(REF_MARKER, at + 1)
    return found


def referenced(payload: bytes, prefix: int = 0) -> list[str]:
    """The digests ``payload`` references, exactly (decoded), in order of appearance."""
    found: list[str] = []
    _collect(_decode(payload[prefix:]), found)
    return found


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, ArtifactRef):
        found.append(value.digest)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, found)
    elif isinstance(value, list):
        for v in value:
            _collect(v, found)


def resolved(payload: bytes, blobs: Mapping[str, bytes], prefix: int = 0) -> bytes:
    """``payload`` with every reference replaced by its value from ``blobs`` (digest ->
    verified bytes); KeyError naming the digest when one is missing."""
    return payload[:prefix] + _encode(_put_back(_decode(payload[prefix:]), blobs))


def _put_back(value: Any, blobs: Mapping[str, bytes]) -> Any:
    if isinstance(value, ArtifactRef):
        return msgspec.msgpack.decode(blobs[value.digest])
    if isinstance(value, dict):
        return {k: _put_back(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [_put_back(v, blobs) for v in value]
    return value


def shown(value: Any) -> Any:
    """How a view shows a reference found in a decoded value (an ``Ext`` of
    :data:`REF_CODE`): ``{"$artifact": "sha256:<digest>"}``; an ``enc_hook`` for
    ``msgspec.to_builtins``."""
    if isinstance(value, msgspec.msgpack.Ext) and value.code == REF_CODE:
        return {"$artifact": f"sha256:{bytes(value.data).hex()}"}
    if isinstance(value, ArtifactRef):
        return {"$artifact": f"sha256:{value.digest}"}
    raise NotImplementedError(f"cannot show {type(value).__name__}")
