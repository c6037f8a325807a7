"""``tether keys``: the engine's Ed25519 audit signing key, kept outside the database.

Example::

    $ tether keys init                 # .tether/keys/signing_key.pem (0600) and keyring.json
    created ed25519:3f1c... in .tether/keys
    $ tether keys rotate               # a new signing key; the old public key stays in the ring
    $ tether keys show

Exit status: 0 done, 1 the key directory cannot be used (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tether.cli.audit_command import KEYS_ENV


def add_parser(commands: Any) -> None:
    """Register ``keys`` (init, rotate, show) on the ``tether`` parser's subcommands."""
    p: argparse.ArgumentParser = commands.add_parser(
        "keys", help="the engine's audit signing key",
        description="Make, rotate or show the Ed25519 key the engine signs its audit log with.",
    )  # fmt: skip
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    for name, helptext in (
        ("init", "make the signing key (refused if one exists)"),
        ("rotate", "make a new signing key, keeping the old public keys in the ring"),
        ("show", "print the signing key's id and the ring"),
    ):
        q = sub.add_parser(name, help=helptext, description=helptext)
        q.add_argument("--keys", default=None, metavar="DIR",
                       help=f"key directory ({KEYS_ENV}, default .tether/keys)")  # fmt: skip
        q.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from tether.governance.keys import (
        AuditKeyError,
        init_keys,
        keys_dir,
        load_keyring,
        load_signing_key,
    )

    directory = keys_dir(args.keys)
    try:
        if args.keys_command in ("init", "rotate"):
            key = init_keys(directory, rotate=args.keys_command == "rotate")
            print(f"{'created' if args.keys_command == 'init' else 'rotated to'} {key.key_id} "
                  f"in {directory}")  # fmt: skip
            return 0
        signing = load_signing_key(directory)
        ring = load_keyring(directory)
    except (AuditKeyError, OSError) as exc:
        print(f"tether keys: {exc}", file=sys.stderr)
        return 1
    print(f"signing key: {signing.key_id if signing else '(none: tether keys init)'}")
    for kid, b64 in ring.as_json().items():
        print(f"  {kid}  {b64}")
    return 0
