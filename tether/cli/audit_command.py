"""``tether audit``: check an execution's hash-chained, signed audit log.

Reads the database directly (read-only, beside a running engine or without one) and the key
ring from the key directory.

Example::

    $ tether audit verify exec_01J...          # or --all
    exec_01J...: ok, 42 rows, chained from seq 1, signed through seq 42
    $ tether audit export exec_01J... --format pdf -o audit_exec_01J.pdf   # or json
      (redacted as the engine's API is: TETHER_REDACT and the workflow's governance.redact;
      --unredacted leaves that out)
    $ tether audit verify-bundle bundle.json --keys trusted_keys/        # no engine, no db

Exit status: 0 every chain and signature holds (export: written), 1 something is broken (the
first bad entry is named; export: a memory fact the facts table no longer holds as the chain
recorded it, the bundle written all the same) or a file or the database cannot be read, 2 bad
arguments. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

#: ``tether.governance.keys.KEYS_ENV``, spelled here for the help text: importing that module
#: loads the governance package (the runtime, the stores) for every `tether` command's parser.
#: A test holds the two equal.
KEYS_ENV: Final = "TETHER_AUDIT_KEYS"


def add_parser(commands: Any) -> None:
    """Register ``audit`` (verify) on the ``tether`` parser's subcommands."""
    p: argparse.ArgumentParser = commands.add_parser(
        "audit",
        help="verify the audit log",
        description="Check executions' hash chains and signed heads.",
    )
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="check chains and signatures; name the first bad entry")
    v.add_argument("execution_id", nargs="?", help="the execution (or --all)")
    v.add_argument("--all", action="store_true", help="every execution in the database")
    _store_options(v)
    v.set_defaults(run=_verify)
    x = sub.add_parser("export", help="write an execution's evidence bundle (JSON or PDF)")
    x.add_argument("execution_id")
    x.add_argument("--format", choices=("json", "pdf"), default="json")
    x.add_argument("-o", "--output", required=True, metavar="FILE")
    x.add_argument(
        "--unredacted",
        action="store_true",
        help="leave out redaction (TETHER_REDACT, the workflow's governance.redact): every "
        "row's content then verifies, and the bundle holds the personal data the run saw",
    )
    _store_options(x)
    x.set_defaults(run=_export)
    b = sub.add_parser("verify-bundle", help="verify a JSON evidence bundle offline")
    b.add_argument("bundle", metavar="FILE")
    b.add_argument(
        "--keys",
        default=None,
        metavar="DIR",
        help="trust only this key ring (default: the bundle's own public keys)",
    )
    b.set_defaults(run=_verify_bundle)


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


# The actions load the journal's store, the governance bundle and the PDF report when one
# runs, not when the `tether` parser is built for any command.
def _verify(args: argparse.Namespace) -> int:
    from tether.cli.audit_actions import verify

    return verify(args)


def _export(args: argparse.Namespace) -> int:
    from tether.cli.audit_actions import export

    return export(args)


def _verify_bundle(args: argparse.Namespace) -> int:
    from tether.cli.audit_actions import verify_bundle_file

    return verify_bundle_file(args)
