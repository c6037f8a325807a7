"""``tether audit``: check an execution's hash-chained, signed audit log.

Reads the database directly (read-only, beside a running engine or without one) and the key
ring from the key directory.

Example::

    $ tether audit verify exec_01J...          # or --all
    exec_01J...: ok, 42 rows, chained from seq 1, signed through seq 42

Exit status: 0 every chain and signature holds, 1 something is broken (the first bad entry is
named) or the database cannot be read, 2 bad arguments. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from tether.governance.chain_verify import AuditVerdict
from tether.governance.keys import KEYS_ENV, KeyFileError, keys_dir, load_keyring
from tether.governance.store_audit import AuditUnavailable, verify_all_stored, verify_stored
from tether.persistence import StorageError, store_for_url
from tether.server.config import DEFAULT_DATABASE_URL, journal_url


def add_parser(commands: Any) -> None:
    """Register ``audit`` (verify) on the ``tether`` parser's subcommands."""
    p: argparse.ArgumentParser = commands.add_parser(
        "audit", help="verify the audit log",
        description="Check executions' hash chains and signed heads.",
    )  # fmt: skip
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="check chains and signatures; name the first bad entry")
    v.add_argument("execution_id", nargs="?", help="the execution (or --all)")
    v.add_argument("--all", action="store_true", help="every execution in the database")
    _store_options(v)
    v.set_defaults(run=_verify)


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=None,
        metavar="URL|PATH",
        help="the journal (TETHER_DATABASE_URL, default sqlite:///.tether/runtime.db)",
    )
    p.add_argument(
        "--keys",
        default=None,
        metavar="DIR",
        help=f"key directory holding keyring.json ({KEYS_ENV}, default .tether/keys)",
    )


def database_url(args: argparse.Namespace) -> str:
    return journal_url(args.db or os.environ.get("TETHER_DATABASE_URL", DEFAULT_DATABASE_URL))


def _verify(args: argparse.Namespace) -> int:
    if bool(args.execution_id) == bool(args.all):
        print("tether audit verify: name one execution, or --all", file=sys.stderr)
        return 2
    try:
        ring = load_keyring(keys_dir(args.keys))
        verdicts = asyncio.run(_verdicts(database_url(args), ring, args.execution_id))
    except (KeyFileError, StorageError, AuditUnavailable, ValueError, OSError) as exc:
        print(f"tether audit verify: {exc}", file=sys.stderr)
        return 1
    for verdict in verdicts:
        print(verdict.describe())
    broken = sum(1 for v in verdicts if not v.ok)
    if args.all:
        print(f"{len(verdicts)} executions, {broken} broken")
    return 1 if broken else 0


async def _verdicts(url: str, ring: Any, execution_id: str | None) -> list[AuditVerdict]:
    store = store_for_url(url, readonly=True)
    await store.open()
    try:
        if execution_id is None:
            return await verify_all_stored(store, ring)
        verdict = await verify_stored(store, ring, execution_id)
        if verdict.rows == 0 and verdict.signatures == 0 and verdict.ok:
            raise StorageError(f"no execution {execution_id} in {url}")
        return [verdict]
    finally:
        await store.close()
