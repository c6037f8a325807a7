"""A payload's references put back from an artifact store, verified (the reads that feed a
fold, and anyone comparing stored rows as values: the audit's snapshot check).

Example::

    payload = await resolve_references(store, row.payload, cache={})
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.persistence.artifacts.contract import ArtifactCorruption
from tether.persistence.artifacts.spill import REF_MARKER, referenced, resolved

if TYPE_CHECKING:
    from tether.persistence.artifacts.contract import ArtifactStore


class UnresolvedReference(Exception):
    """A reference whose artifact is missing or fails its check; the message says which."""

    def __init__(self, digest: str, why: str) -> None:
        super().__init__(f"references artifact sha256:{digest}, which {why}")
        self.digest = digest


async def resolve_references(
    artifacts: ArtifactStore, payload: bytes, cache: dict[str, bytes], prefix: int = 0
) -> bytes:
    """``payload`` with its references replaced by their values (``payload`` itself when it
    holds none). ``cache`` keeps the artifacts read, for the next payload of the same read."""
    if REF_MARKER not in payload:
        return payload
    digests = referenced(payload, prefix)
    if not digests:
        return payload  # the marker's bytes, but inside some other value
    for digest in digests:
        if digest in cache:
            continue
        try:
            data = await artifacts.get_artifact(digest)
        except ArtifactCorruption as exc:
            raise UnresolvedReference(
                digest, "failed its check (its bytes hash otherwise)"
            ) from exc
        if data is None:
            raise UnresolvedReference(digest, "is missing")
        cache[digest] = data
    return resolved(payload, cache, prefix)
