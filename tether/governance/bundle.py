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
    memory_facts      [{seq, node_id, scope, fact_id, subject, content, at_ms, supersedes,
                        written}]   (absent in bundles made before it: then none)
    memory_store      {checked, mismatches: [{seq, fact_id, problem}]}: the facts table
                      checked against memory_facts at export (not re-checked offline)
    chain             {rows: [{seq, type, payload, checksum, link, redacted?}], head_seq,
                       head}
    redaction         {mode, detectors, patterns, fields, rows}   (a redacted bundle only)
    signatures        [{seq, link, key_id, signature, proof, signed_at_ms}]
    public_keys       {key_id: raw Ed25519 public key}

``verify_bundle`` checks the chain rows and signatures as ``tether audit verify`` does, then
derives every table above again from the chain's own records and compares: a table edited in
the JSON, or a record edited with the chain recomputed, is named.

Exported under a redaction policy (``tether.governance.redaction``), each row whose payload
holds something the policy finds carries the redacted payload and ``redacted: true``; every
table is derived from the rows as carried, so nothing unredacted is in the bundle (hashes
included: a plain hash of a phone number can be guessed back). Such a row's checksum and
link cannot be recomputed: the verifier takes its link as given, which the next row's link
and the signed heads still check, but not its content. The unredacted export is the one
that proves every row's content.

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
from tether.governance.redaction.bundle_exit import redact_rows, redaction_note
from tether.governance.redaction.redactor import Redactor
from tether.governance.store_audit import audit_log_of
from tether.ir.types import decode_workflow
from tether.persistence.artifacts.spill import shown
from tether.persistence.audit_chain import ChainedRow, HeadSignature
from tether.persistence.contract import StorageError, Store, StoredRecord
from tether.persistence.facts import FactRow, FactStore
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
    "memory_facts",
)


class BundleError(Exception):
    """A bundle that cannot be read (not JSON, another format, a missing section)."""


async def export_bundle(
    store: Store, ring: KeyRing, execution_id: str, redactor: Redactor | None = None
) -> dict[str, Any]:
    """The evidence bundle of one execution, as JSON-ready builtins; with ``redactor``, with
    the rows and tables redacted (see the module docstring)."""
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
    store_check = await _memory_store_check(store, _facts(execution_id, journal.rows, tools))
    rows, hidden = journal.rows, frozenset[int]()
    execution = msgspec.to_builtins(row) if row is not None else {"execution_id": execution_id}
    if redactor is not None:
        rows, hidden = redact_rows(rows, redactor)
        verdict = msgspec.structs.replace(verdict, redacted=len(hidden))
        execution = redactor.value(execution)
    facts = _facts(execution_id, rows, tools)
    used = {s.key_id for s in signatures}
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "execution": execution,
        "summary": _summary(facts, verdict),
        **msgspec.to_builtins(facts, enc_hook=shown),  # artifacts by their references
        "tools": tools,
        "chain": {
            "rows": [_row_json(r, r.seq in hidden) for r in rows],
            "head_seq": verdict.head_seq,
            "head": verdict.head,
        },
        "signatures": [_signature_json(s) for s in signatures],
        "public_keys": {k: v for k, v in ring.as_json().items() if k in used},
    }
    if store_check is not None:
        bundle["memory_store"] = store_check
    if redactor is not None:
        bundle["redaction"] = redaction_note(redactor, hidden)
    return bundle


async def _memory_store_check(store: Store, facts: GovernanceFacts) -> dict[str, Any] | None:
    """The run's memory facts as the facts table holds them now, against the chain's record
    of them: ``{checked, mismatches: [{seq, fact_id, problem}]}`` (None: no facts). The table
    is beside the journal and not chained, so an edit there is named here, at export; values
    are not quoted (they may be personal data)."""
    if not facts.memory_facts or not isinstance(store, FactStore):
        return None
    mismatches: list[dict[str, Any]] = []
    tables: dict[str, dict[str, FactRow]] = {}
    for fact in facts.memory_facts:
        scope = str(fact["scope"])
        if scope not in tables:
            tables[scope] = {r.fact_id: r for r in await store.read_facts(scope)}
        row = tables[scope].get(fact["fact_id"])
        where = {"seq": fact["seq"], "fact_id": fact["fact_id"]}
        if row is None:
            mismatches.append({**where, "problem": "not in the facts table (deleted)"})
            continue
        differ = [
            k for k in ("subject", "content", "at_ms", "supersedes") if getattr(row, k) != fact[k]
        ]
        if differ:
            fields = ", ".join(differ)
            problem = f"the facts table's {fields} differ from the chain's (edited)"
            mismatches.append({**where, "problem": problem})
    return {"checked": len(facts.memory_facts), "mismatches": mismatches}


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
        hidden = frozenset(int(r["seq"]) for r in bundle["chain"]["rows"] if r.get("redacted"))
    except (BundleError, AuditKeyError, KeyError, TypeError, ValueError) as exc:
        return BundleReport(False, None, [f"not a readable {FORMAT}: {exc}"], "bundle")
    ring = trusted if trusted is not None else bundled
    last_seq = bundle["execution"].get("last_seq")
    verdict = verify_execution(eid, rows, signatures, ring, last_seq, hidden)
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
                if name == "memory_facts" and name not in bundle and not derived[name]:
                    continue  # made before bundles carried memory facts: it had none
                if _normal(bundle.get(name)) != _normal(derived[name]):
                    problems.append(f"{name}: does not match the chain's records (edited)")
            summary = _summary(facts, verdict)
            for key in ("memory_facts", "redacted_rows"):  # bundles made before these
                if key not in (bundle.get("summary") or {}) and not summary[key]:
                    del summary[key]
            if _normal(bundle.get("summary")) != _normal(summary):
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
        "memory_facts": len(facts.memory_facts),
        "redacted_rows": verdict.redacted,
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


def _row_json(r: ChainedRow, redacted: bool = False) -> dict[str, Any]:
    row = {
        "seq": r.seq,
        "type": r.type,
        "payload": _text(r.payload),
        "checksum": r.checksum,
        "link": r.chain.hex() if r.chain is not None else None,
    }
    if redacted:
        row["redacted"] = True
    return row


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
