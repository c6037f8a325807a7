"""The signer an engine runs: the key directory's signing key over the store's audit log.

Example::

    signer = engine_signer(store, clock)           # None: no key, or a store without a log
    if signer is not None:
        async with signer:
            ...
"""

from __future__ import annotations

import logging
from pathlib import Path

from tether.clock import Clock
from tether.governance.keys import keys_dir, load_signing_key
from tether.governance.signer import HeadSigner
from tether.governance.store_audit import AuditUnavailable, audit_log_of
from tether.persistence.contract import Store

log = logging.getLogger(__name__)


def engine_signer(
    store: Store, clock: Clock, directory: Path | None = None, interval_s: float = 1.0
) -> HeadSigner | None:
    """A signer for ``store`` with the key in ``directory`` (default: ``keys_dir()``), or
    None when there is no key (the chain is still written; heads are signed by the first
    engine that has one) or the store keeps no audit log. A key file that cannot be used
    raises ``AuditKeyError``: an engine told to sign must not quietly stop signing."""
    key = load_signing_key(directory if directory is not None else keys_dir())
    if key is None:
        log.info("audit: no signing key (tether keys init); chain heads are not signed")
        return None
    try:
        audit = audit_log_of(store)
    except AuditUnavailable as exc:
        log.info("audit: %s", exc)
        return None
    if not audit.chaining:
        return None
    return HeadSigner(audit, key, lambda: int(clock.now() * 1000), interval_s)
