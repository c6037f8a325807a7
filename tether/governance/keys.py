"""The engine's Ed25519 audit key and the key ring that verifies its signatures.

A key directory (``--keys DIR``, ``TETHER_AUDIT_KEYS``, default ``.tether/keys``) holds, outside
the database, ``signing_key.pem`` (the private key, PKCS#8, mode 0600) and ``keyring.json``
(every public key this engine has signed with, by key id). Rotating makes a new signing key
and keeps the old public keys in the ring, so heads signed before still verify. A key id is
``ed25519:`` and the first 16 bytes of the SHA-256 of the raw public key, in hex.

Example::

    key = init_keys(Path(".tether/keys"))          # tether keys init
    sig, [proof] = key.sign_heads([("exec_1", 7, link)])
    ring = load_keyring(Path(".tether/keys"))
    assert ring.verify_head(key.key_id, "exec_1", 7, link, sig, proof)
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.governance.merkle import build, leaf_hash, root_of

#: Environment variable naming the key directory.
KEYS_ENV = "TETHER_AUDIT_KEYS"
DEFAULT_KEYS_DIR = Path(".tether/keys")
SIGNING_KEY_FILE = "signing_key.pem"
KEYRING_FILE = "keyring.json"


class AuditKeyError(ValueError):
    """A key directory that cannot be used; the message says which file and why."""


def keys_dir(explicit: str | Path | None = None) -> Path:
    """The key directory: ``explicit``, else ``$TETHER_AUDIT_KEYS``, else ``.tether/keys``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(KEYS_ENV)
    return Path(env) if env else DEFAULT_KEYS_DIR


def head_message(execution_id: str, seq: int, chain: bytes) -> bytes:
    """A chain head as a Merkle leaf's bytes: a domain tag, the execution, the seq, the link."""
    return f"tether-audit-head-v1|{len(execution_id)}:{execution_id}|{seq}|".encode() + chain


def batch_message(root: bytes) -> bytes:
    """The bytes a signature covers: a domain tag and the root of one pass's heads."""
    return b"tether-audit-batch-v1|" + root


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + sha256(raw).digest()[:16].hex()


def public_key_b64(public: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in base64 (how bundles and the ring carry it)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise AuditKeyError(f"not an Ed25519 public key: {exc}") from exc


@dataclass(frozen=True)
class SigningKey:
    """The engine's private key and its id."""

    key_id: str
    private: Ed25519PrivateKey

    def sign_heads(self, heads: Sequence[tuple[str, int, bytes]]) -> tuple[bytes, list[bytes]]:
        """One signature over a batch of ``(execution_id, seq, link)`` heads and each head's
        Merkle proof (what verifies it alone with the signature)."""
        root, proofs = build([leaf_hash(head_message(*h)) for h in heads])
        return self.private.sign(batch_message(root)), proofs

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


@dataclass(frozen=True)
class KeyRing:
    """Public keys by key id: every key signatures may have been made with."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    def verify_head(
        self,
        key_id: str,
        execution_id: str,
        seq: int,
        chain: bytes,
        signature: bytes,
        proof: bytes,
    ) -> bool:
        """True when ``proof`` leads that head to a batch root ``signature`` is ``key_id``'s
        over; False otherwise (an unknown key included: ask ``key_id in ring.keys`` to tell
        the two apart)."""
        public = self.keys.get(key_id)
        root = root_of(leaf_hash(head_message(execution_id, seq, chain)), proof)
        if public is None or root is None:
            return False
        try:
            public.verify(signature, batch_message(root))
        except InvalidSignature:
            return False
        return True

    def as_json(self) -> dict[str, str]:
        """``{key_id: base64 public key}``."""
        return {kid: public_key_b64(pub) for kid, pub in sorted(self.keys.items())}

    @classmethod
    def from_json(cls, keys: dict[str, str]) -> KeyRing:
        """The ring of ``as_json``; a key whose id does not match its bytes is refused."""
        ring: dict[str, Ed25519PublicKey] = {}
        for kid, b64 in keys.items():
            public = public_key_from_b64(b64)
            if key_id_of(public) != kid:
                raise AuditKeyError(f"key {kid}: its id does not match its public key")
            ring[kid] = public
        return cls(ring)


def init_keys(directory: Path, rotate: bool = False) -> SigningKey:
    """Make a signing key in ``directory`` (refused if one exists, unless ``rotate``) and add
    its public key to the ring. The private key file is created with mode 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SIGNING_KEY_FILE
    if path.exists() and not rotate:
        raise AuditKeyError(
            f"{path} already exists; `tether keys rotate` makes a new one (old signatures "
            "still verify with the old public key kept in the key ring)"
        )
    ring = load_keyring(directory)  # checked before anything is written
    private = Ed25519PrivateKey.generate()
    key = SigningKey(key_id_of(private.public_key()), private)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    # The ring first: a crash between the two writes leaves an extra public key, never a
    # signing key whose signatures nothing can verify.
    _write_ring(directory, KeyRing({**ring.keys, key.key_id: key.public}))
    tmp = directory / f"{SIGNING_KEY_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key


def load_signing_key(directory: Path) -> SigningKey | None:
    """The signing key in ``directory``, or None when there is none. A key file others may
    read, or one that is not an Ed25519 key, is refused."""
    path = directory / SIGNING_KEY_FILE
    if not path.exists():
        return None
    if path.stat().st_mode & 0o077:
        raise AuditKeyError(f"{path} may be read by others (mode {path.stat().st_mode & 0o777:o}); "
                        f"chmod 600 {path}")  # fmt: skip
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"{path}: not a usable private key: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise AuditKeyError(f"{path}: not an Ed25519 key")
    return SigningKey(key_id_of(private.public_key()), private)


def load_keyring(directory: Path) -> KeyRing:
    """The ring in ``directory`` (empty when there is none)."""
    path = directory / KEYRING_FILE
    if not path.exists():
        return KeyRing()
    try:
        data = json.loads(path.read_text())
        keys = data["keys"]
        if not isinstance(keys, dict):
            raise TypeError("'keys' is not an object")
        return KeyRing.from_json({str(k): str(v) for k, v in keys.items()})
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditKeyError(f"{path}: not a key ring: {exc}") from exc


def _write_ring(directory: Path, ring: KeyRing) -> None:
    path = directory / KEYRING_FILE
    tmp = directory / f"{KEYRING_FILE}.tmp"
    tmp.write_text(json.dumps({"keys": ring.as_json()}, indent=2) + "\n")
    os.replace(tmp, path)
