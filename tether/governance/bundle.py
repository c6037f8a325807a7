"""Evidence bundles: one execution's audit trail as a JSON document that verifies offline.

Schema ``tether-evidence-bundle/1`` (every hash hex, every byte string base64)::

    format            "tether-evidence-bundle/1"
    execution         {execution_id, workflow_id, workflow_version, status, created_at_ms,
                       updated_at_ms, last_seq, error}
    summary           {events, tool_calls, model_calls, policy_decisions, approvals,
                       budget_breaches, chained_from, head_seq, signed_through, key_ids}
    run               {started_seq, started_at_ms, workflow_id, workflow_version,
                       input_sha256, ended_seq, ended_at_ms, status, output_sha256 | reason}
    events            [{seq, type, at_ms, node_id}]
    tool_calls        [{seq, scheduled_seq, node_id, tool, attempt, arguments_sha256,
                        worker_id, duration_ms, status, result_sha256 | error}]
    model_calls       [{seq, node_id, attempt, duration_ms, gen_ai_system, gen_ai_model,
                        input_tokens, output_tokens, finish_reason, cost_usd}]
    policy_decisions  [{seq, decision, node_id, tool, rule, call_id, arguments_sha256}]
    approvals         [{seq, node_id, decision, user_id, at_ms, comment}]
    budget            {cost_usd, tokens, breaches: [{seq, node_id, limit, scope, spent, cap,
                                                     projected}]}
    output            the run's result (null unless it completed)
    chain             {rows: [{seq, type, payload, checksum, link}], head_seq, head}
    signatures        [{seq, link, key_id, signature, proof, signed_at_ms}]
    public_keys       {key_id: raw Ed25519 public key}

``verify_bundle`` checks the chain rows and signatures as ``tether audit verify`` does, then
derives every table above again from the chain's own records and compares: a table edited in
the JSON, or a record edited with the chain recomputed, is named.

Example::

    bundle = await export_bundle(store, ring, "exec_1")
    report = verify_bundle(json.loads(json.dumps(bundle)))
    assert report.ok, report.problems
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from tether.governance.chain_verify import AuditVerdict, verify_execution
from tether.governance.facts import GovernanceFacts, governance_facts
from tether.governance.keys import AuditKeyError, KeyRing
from tether.governance.store_audit import audit_log_of
from tether.ir.types import decode_workflow
from tether.persistence.artifacts.spill import shown
from tether.persistence.audit_chain import ChainedRow, HeadSignature
from tether.persistence.contract import StorageError, Store, StoredRecord
from tether.runtime.records import MalformedRecord, UnknownRecordType, decode_rows

FORMAT = "tether-evidence-bundle/1"
#: The tables derived from the chain (checked against it on verify).
DERIVED = (
    "events",
    "run",
    "tool_calls",
    "model_calls",
    "policy_decisions",
    "approvals",
    "budget",
    "output",
)


class BundleError(Exception):
    """A bundle that cannot be read (not JSON, another format, a missing section)."""


async def export_bundle(store: Store, ring: KeyRing, execution_id: str) -> dict[str, Any]:
    """The evidence bundle of one execution, as JSON-ready builtins."""
    log = audit_log_of(store)
    signatures = await log.read_signatures(execution_id)
    journal = await log.read_chained(execution_id)
    row = await store.get_execution(execution_id)
    if row is None and not journal.rows:
        raise StorageError(f"no execution {execution_id}")
    verdict = verify_execution(execution_id, journal.rows, signatures, ring, journal.index_last_seq)
    tools: dict[str, str] = {}
    if row is not None:
        tools = await _tool_names(store, row.workflow_id, row.workflow_version)
    facts = _facts(execution_id, journal.rows, tools)
    used = {s.key_id for s in signatures}
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "execution": msgspec.to_builtins(row)
        if row is not None
        else {"execution_id": execution_id},
        "summary": _summary(facts, verdict),
        **msgspec.to_builtins(facts, enc_hook=shown),  # artifacts by their references
        "tools": tools,
        "chain": {
            "rows": [_row_json(r) for r in journal.rows],
            "head_seq": verdict.head_seq,
            "head": verdict.head,
        },
        "signatures": [_signature_json(s) for s in signatures],
        "public_keys": {k: v for k, v in ring.as_json().items() if k in used},
    }
    return bundle


class BundleReport(msgspec.Struct, frozen=True, gc=False):
    """What ``verify_bundle`` found: ``ok`` when the chain, the signatures and every table
    hold; ``problems`` names each that does not."""

    ok: bool
    verdict: AuditVerdict | None
    problems: list[str]
    #: Where the keys came from: "bundle" (the bundle's own: pin them with a trusted ring)
    #: or "ring" (a key ring the verifier was given).
    keys_from: str


def verify_bundle(bundle: Any, trusted: KeyRing | None = None) -> BundleReport:
    """Verify a parsed bundle offline (no engine, no database). With ``trusted``, signatures
    must be by keys of that ring; without, the bundle's own public keys are used (which
    proves integrity, not whose key: compare the key ids with the engine's)."""
    problems: list[str] = []
    try:
        eid, rows, signatures, bundled = _read(bundle)
    except (BundleError, AuditKeyError, KeyError, TypeError, ValueError) as exc:
        return BundleReport(False, None, [f"not a readable {FORMAT}: {exc}"], "bundle")
    ring = trusted if trusted is not None else bundled
    verdict = verify_execution(eid, rows, signatures, ring, bundle["execution"].get("last_seq"))
    if not verdict.ok:
        problems.append(f"chain: seq {verdict.bad_seq}: {verdict.problem}")
    elif verdict.signed_through is None:
        problems.append("chain: no signed head (was the engine given a key?)")
    elif verdict.signed_through != verdict.head_seq:
        problems.append(f"chain: rows after seq {verdict.signed_through} are not signed")
    if verdict.ok:
        try:
            facts = _facts(eid, rows, bundle.get("tools") or {})
        except (MalformedRecord, UnknownRecordType) as exc:
            problems.append(f"chain: a record does not decode: {exc}")
        else:
            derived = msgspec.to_builtins(facts, enc_hook=shown)
            for name in DERIVED:
                if _normal(bundle.get(name)) != _normal(derived[name]):
                    problems.append(f"{name}: does not match the chain's records (edited)")
            if _normal(bundle.get("summary")) != _normal(_summary(facts, verdict)):
                problems.append("summary: does not match the chain's records (edited)")
    keys_from = "ring" if trusted is not None else "bundle"
    return BundleReport(not problems, verdict, problems, keys_from)


def _read(bundle: Any) -> tuple[str, list[ChainedRow], list[HeadSignature], KeyRing]:
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise BundleError(f"format is not {FORMAT!r}")
    eid = str(bundle["execution"]["execution_id"])
    rows = [
        ChainedRow(
            eid,
            int(r["seq"]),
            str(r["type"]),
            _b64(r["payload"]),
            int(r["checksum"]),
            bytes.fromhex(r["link"]) if r.get("link") else None,
        )
        for r in bundle["chain"]["rows"]
    ]
    signatures = [
        HeadSignature(
            eid,
            int(s["seq"]),
            bytes.fromhex(s["link"]),
            str(s["key_id"]),
            _b64(s["signature"]),
            int(s["signed_at_ms"]),
            _b64(s["proof"]),
        )
        for s in bundle["signatures"]
    ]
    return eid, rows, signatures, KeyRing.from_json(dict(bundle["public_keys"]))


def _facts(eid: str, rows: list[ChainedRow], tools: dict[str, str]) -> GovernanceFacts:
    stored = [StoredRecord(eid, r.seq, r.type, r.payload) for r in rows]
    return governance_facts(decode_rows(stored), tools)


def _summary(facts: GovernanceFacts, verdict: AuditVerdict) -> dict[str, Any]:
    return {
        "events": len(facts.events),
        "tool_calls": len(facts.tool_calls),
        "model_calls": len(facts.model_calls),
        "policy_decisions": len(facts.policy_decisions),
        "approvals": len(facts.approvals),
        "budget_breaches": len(facts.budget["breaches"]),
        "chained_from": verdict.chained_from,
        "head_seq": verdict.head_seq,
        "signed_through": verdict.signed_through,
        "key_ids": list(verdict.key_ids),
        "verified": verdict.ok,
    }


async def _tool_names(store: Store, workflow_id: str, version: str) -> dict[str, str]:
    found = await store.get_workflow(workflow_id, version)
    if found is None:
        return {}
    try:
        wf = decode_workflow(found.ir)
    except Exception:  # a registry row this version cannot read: receipts name nodes only
        return {}
    return {nid: ref for nid, n in wf.nodes.items() if (ref := getattr(n.kind, "tool_ref", None))}


def _row_json(r: ChainedRow) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "type": r.type,
        "payload": _text(r.payload),
        "checksum": r.checksum,
        "link": r.chain.hex() if r.chain is not None else None,
    }


def _signature_json(s: HeadSignature) -> dict[str, Any]:
    return {
        "seq": s.seq,
        "link": s.chain.hex(),
        "key_id": s.key_id,
        "signature": _text(s.signature),
        "proof": _text(s.proof),
        "signed_at_ms": s.signed_at_ms,
    }


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64(text: Any) -> bytes:
    return base64.b64decode(str(text), validate=True)


def _normal(value: Any) -> Any:
    """A value as JSON gives it back (tuples as lists), for comparing tables."""
    return msgspec.json.decode(msgspec.json.encode(value))
