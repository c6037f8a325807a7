"""The engine's own redaction settings: a policy from ``TETHER_REDACT`` and the hash key.

``TETHER_REDACT`` is ``mask`` or ``hash`` (every built-in detector), a JSON object shaped as
a workflow's ``governance.redact``, or the path of a YAML or JSON file holding one.

The key a ``hash`` policy hashes under is ``TETHER_REDACT_KEY`` (32+ characters), else the
file ``redaction.key`` in the key directory (``TETHER_AUDIT_KEYS``, default ``.tether/keys``),
made (32 random bytes, mode 0600) the first time a hash policy needs it. It is kept outside
the database: whoever has the database alone cannot test a guess against a hashed value.

Example::

    policy = policy_from_env(os.environ)              # None: TETHER_REDACT is not set
    key = redaction_key(os.environ, keys_dir())
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

from tether.ir.governance import RedactPolicy, redact_policy_problems

REDACT_ENV: Final = "TETHER_REDACT"
REDACT_KEY_ENV: Final = "TETHER_REDACT_KEY"
KEY_FILE: Final = "redaction.key"
MIN_KEY_CHARS: Final = 32


class RedactionSettingsError(ValueError):
    """A redaction setting that cannot be used; the message names it."""


def policy_from_env(env: Mapping[str, str]) -> RedactPolicy | None:
    """The policy ``TETHER_REDACT`` gives (see the module docstring), or None."""
    raw = env.get(REDACT_ENV, "").strip()
    if not raw:
        return None
    if raw in ("mask", "hash"):
        return RedactPolicy(mode=raw)
    data: Any
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RedactionSettingsError(f"{REDACT_ENV} is not valid JSON: {exc}") from None
    else:
        try:
            data = yaml.safe_load(Path(raw).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise RedactionSettingsError(
                f"{REDACT_ENV}={raw}: not mask, hash, a JSON object or a readable policy "
                f"file ({exc})"
            ) from None
    return parse_policy(data, REDACT_ENV)


def parse_policy(data: Any, where: str) -> RedactPolicy:
    """A policy from decoded JSON or YAML; RedactionSettingsError naming ``where``."""
    try:
        policy = msgspec.convert(data, RedactPolicy)
    except msgspec.ValidationError as exc:
        raise RedactionSettingsError(f"{where}: {exc}") from None
    problems = redact_policy_problems(policy)
    if problems:
        subpath, message = problems[0]
        raise RedactionSettingsError(f"{where}: {subpath}: {message}")
    return policy


def redaction_key(env: Mapping[str, str], directory: Path) -> bytes:
    """The key hash-mode redaction uses (made in ``directory`` when there is none)."""
    given = env.get(REDACT_KEY_ENV)
    if given:
        if len(given) < MIN_KEY_CHARS:
            raise RedactionSettingsError(
                f"{REDACT_KEY_ENV} is {len(given)} characters: use at least {MIN_KEY_CHARS}"
            )
        return given.encode()
    path = directory / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise RedactionSettingsError(f"{path}: not a redaction key ({exc})") from None
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:  # O_EXCL: two processes making it at once keep one key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key
