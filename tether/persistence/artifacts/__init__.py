"""Content-addressed artifacts (I9): the store contract, the spill of large values out of
journal payloads, the store front that does it, and the retention sweep."""

from tether.persistence.artifacts.contract import (
    MAX_ARTIFACT_BYTES,
    ArtifactCorruption,
    ArtifactInfo,
    ArtifactStore,
    check_digest,
    digest_of,
)

__all__ = [
    "MAX_ARTIFACT_BYTES",
    "ArtifactCorruption",
    "ArtifactInfo",
    "ArtifactStore",
    "check_digest",
    "digest_of",
]
