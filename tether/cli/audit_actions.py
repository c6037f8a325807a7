"""What ``tether audit verify``, ``export`` and ``verify-bundle`` do (their arguments are
parsed by :mod:`tether.cli.audit_command`): each returns the exit status and says a failure
in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from tether.governance.bundle import export_bundle, verify_bundle
from tether.governance.chain_verify import AuditVerdict
from tether.governance.keys import AuditKeyError, keys_dir, load_keyring
from tether.governance.pdf_report import PdfUnavailable, render_pdf
from tether.governance.redaction.engine import EngineRedaction
from tether.governance.redaction.settings import (
    RedactionSettingsError,
    policy_from_env,
    redaction_key,
)
from tether.governance.store_audit import AuditUnavailable, verify_all_stored, verify_stored
from tether.ir.governance import RedactPolicy
from tether.ir.types import decode_workflow
from tether.persistence import StorageError, store_for_url
from tether.server.config import DEFAULT_DATABASE_URL, journal_url


def database_url(args: argparse.Namespace) -> str:
    return journal_url(args.db or os.environ.get("TETHER_DATABASE_URL", DEFAULT_DATABASE_URL))


def verify(args: argparse.Namespace) -> int:
    if bool(args.execution_id) == bool(args.all):
        print("tether audit verify: name one execution, or --all", file=sys.stderr)
        return 2
    try:
        ring = load_keyring(keys_dir(args.keys))
        verdicts = asyncio.run(_verdicts(database_url(args), ring, args.execution_id))
    except (AuditKeyError, StorageError, AuditUnavailable, ValueError, OSError) as exc:
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


def export(args: argparse.Namespace) -> int:
    try:
        ring = load_keyring(keys_dir(args.keys))
        configured = None if args.unredacted else policy_from_env(os.environ)
        bundle = asyncio.run(_bundle(database_url(args), ring, args.execution_id, configured, args))
        if args.format == "pdf":
            data = render_pdf(bundle)
        else:
            data = json.dumps(bundle, indent=1, sort_keys=True).encode() + b"\n"
        Path(args.output).write_bytes(data)
    except (
        AuditKeyError,
        StorageError,
        AuditUnavailable,
        PdfUnavailable,
        RedactionSettingsError,
        ValueError,
        OSError,
    ) as exc:
        print(f"tether audit export: {exc}", file=sys.stderr)
        return 1
    summary = bundle["summary"]
    print(
        f"wrote {args.output}: {summary['events']} events, {summary['tool_calls']} tool "
        f"calls, {summary['model_calls']} model calls, chain verified: "
        f"{'yes' if summary['verified'] else 'NO'}"
        + (f", {summary['redacted_rows']} rows redacted" if "redaction" in bundle else "")
    )
    mismatches = (bundle.get("memory_store") or {}).get("mismatches") or []
    for m in mismatches:
        print(f"memory fact {m['fact_id']} (seq {m['seq']}): {m['problem']}", file=sys.stderr)
    return 1 if mismatches else 0


async def _bundle(
    url: str,
    ring: Any,
    execution_id: str,
    configured: RedactPolicy | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    store = store_for_url(url, readonly=True)
    await store.open()
    try:
        redactor = None
        if not args.unredacted:
            # The engine's own policy and this run's workflow's.
            redaction = EngineRedaction(
                configured, lambda: redaction_key(os.environ, keys_dir(args.keys))
            )
            row = await store.get_execution(execution_id)
            found = row and await store.get_workflow(row.workflow_id, row.workflow_version)
            if found:
                redaction.add(decode_workflow(found.ir))
            redactor = redaction.current
        return await export_bundle(store, ring, execution_id, redactor)
    finally:
        await store.close()


def verify_bundle_file(args: argparse.Namespace) -> int:
    try:
        bundle = json.loads(Path(args.bundle).read_bytes())
        trusted = load_keyring(Path(args.keys)) if args.keys else None
    except (OSError, ValueError, AuditKeyError) as exc:
        print(f"tether audit verify-bundle: {args.bundle}: {exc}", file=sys.stderr)
        return 1
    report = verify_bundle(bundle, trusted)
    if report.verdict is not None:
        print(report.verdict.describe())
    for problem in report.problems:
        print(f"problem: {problem}")
    if report.ok:
        keys = ", ".join(report.verdict.key_ids) if report.verdict else ""
        where = (
            "the trusted ring"
            if report.keys_from == "ring"
            else (
                "the bundle's own public keys: compare their ids with the engine's, or pass --keys"
            )
        )
        print(
            f"bundle verified: chain, signatures and every table hold (keys {keys}, from {where})"
        )
    return 0 if report.ok else 1
