"""Governance that needs no cloud: the journal's hash-chained audit log, checked and signed.

Every journal row carries a SHA-256 link to the row before it (written by the store's writer
in the row's own transaction, ``tether.persistence.audit_chain``); the engine signs each
execution's newest link with its Ed25519 key (``keys``, ``signer``); ``verify_execution``
checks both and names the first bad entry.

Example::

    from tether.governance import init_keys, load_keyring, verify_stored
    key = init_keys(Path(".tether/keys"))
    verdict = await verify_stored(store, load_keyring(Path(".tether/keys")), "exec_1")
"""

from tether.governance.chain_verify import AuditVerdict, verify_execution
from tether.governance.engine_signing import engine_signer
from tether.governance.keys import (
    AuditKeyError,
    KeyRing,
    SigningKey,
    init_keys,
    keys_dir,
    load_keyring,
    load_signing_key,
)
from tether.governance.signer import HeadSigner
from tether.governance.store_audit import (
    AuditUnavailable,
    audit_log_of,
    verify_all_stored,
    verify_stored,
)

__all__ = [
    "AuditKeyError",
    "AuditUnavailable",
    "AuditVerdict",
    "HeadSigner",
    "KeyRing",
    "SigningKey",
    "audit_log_of",
    "engine_signer",
    "init_keys",
    "keys_dir",
    "load_keyring",
    "load_signing_key",
    "verify_all_stored",
    "verify_execution",
    "verify_stored",
]
