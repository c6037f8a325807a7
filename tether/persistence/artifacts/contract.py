"""Content-addressed artifacts: what a store offers for them, and what an artifact is.

An artifact is a byte string kept under the SHA-256 of those bytes (64 lowercase hex
digits). A digest, once stored, always names the same bytes: a second put of the same bytes
changes nothing but the time it was last put (``touched_at_ms``, which a sweep honours), and
a read checks the bytes against their digest, so a corrupt artifact is an
:class:`ArtifactCorruption`, never returned (I9).

Example::

    [digest] = await store.put_artifacts([b"a large value"], at_ms=1_700_000_000_000)
    assert await store.get_artifact(digest) == b"a large value"
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from tether.persistence.contract import StorageError

#: The largest artifact a store takes (bytes): a value past it is refused, not truncated.
MAX_ARTIFACT_BYTES: Final = 256 * 1024 * 1024

_DIGEST = re.compile(r"[0-9a-f]{64}")


class ArtifactCorruption(StorageError):
    """An artifact's bytes no longer hash to its digest; the row is left for inspection."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"artifact sha256:{digest} failed its check: its bytes hash otherwise")
        self.digest = digest


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """One stored artifact, without its bytes."""

    digest: str
    size: int
    created_at_ms: int
    #: When it was last put (created or put again): a sweep keeps younger ones.
    touched_at_ms: int


@runtime_checkable
class ArtifactStore(Protocol):
    """A store that keeps artifacts (SQLite, Postgres and the memory store all do)."""

    async def put_artifacts(self, blobs: Sequence[bytes], at_ms: int) -> list[str]:
        """Store each blob under its SHA-256 unless there (then only its ``touched_at_ms``
        moves on), in one transaction; the digests, in order."""
        ...

    async def get_artifact(self, digest: str) -> bytes | None:
        """The verified bytes, None when unknown; ArtifactCorruption when they fail."""
        ...

    async def list_artifacts(self) -> list[ArtifactInfo]:
        """Every artifact, by digest."""
        ...

    async def artifact_references(self, marker: bytes) -> list[bytes]:
        """The payload of every journal row and snapshot that contains ``marker`` (what a
        sweep reads references from)."""
        ...

    async def delete_artifacts(self, digests: Collection[str], touched_before_ms: int) -> list[str]:
        """Remove those of ``digests`` last put before ``touched_before_ms``, in one
        transaction; the digests removed."""
        ...


def digest_of(data: bytes) -> str:
    """The artifact digest of ``data``: its SHA-256, 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def check_digest(text: str) -> str:
    """``text`` as a digest (a ``sha256:`` prefix allowed); ValueError saying what is wrong."""
    digest = text.removeprefix("sha256:")
    if not _DIGEST.fullmatch(digest):
        raise ValueError(
            f"{text[:80]!r} is not an artifact digest: expected 64 lowercase hex digits "
            "(SHA-256), optionally prefixed 'sha256:'"
        )
    return digest


def checked_blob(data: bytes) -> bytes:
    """``data`` if a store takes it; ValueError naming the limit otherwise."""
    if not isinstance(data, bytes):
        raise ValueError(f"an artifact is bytes, got {type(data).__name__}")
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ValueError(f"an artifact is at most {MAX_ARTIFACT_BYTES} bytes, got {len(data)}")
    return data


def verified(digest: str, data: bytes) -> bytes:
    """``data`` when it hashes to ``digest``; ArtifactCorruption otherwise."""
    if hashlib.sha256(data).hexdigest() != digest:
        raise ArtifactCorruption(digest)
    return data


def keyed(blobs: Sequence[bytes]) -> list[tuple[str, bytes]]:
    """``(digest, data)`` for each blob a store is asked to put (checked: ValueError)."""
    return [(digest_of(checked_blob(data)), data) for data in blobs]
