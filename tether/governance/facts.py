"""Governance facts, read from an execution's chained journal records (never written twice).

Each fact names the seq of the record(s) it comes from, so an auditor can find it in the
chain: run start and end, tool calls with a receipt (node, tool, attempt, arguments and
result hashes, worker, duration), model calls (model, tokens, cost), policy decisions, human
approvals (who, when, what), budget breaches, and the durable memory facts the run wrote
(scope, fact id, subject, content, as the ``memory_write`` node's completion recorded them:
the facts table is beside the journal, so the chain's record is what a bundle verifies). A
work node without a model in its facts is
a tool call; a policy decision in the journal is a refusal (a tool call that ran was allowed).

Example::

    facts = governance_facts(entries, tools={"first": "add_one"})
    facts.tool_calls[0]["arguments_sha256"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

import msgspec

from tether.persistence.artifacts.spill import shown
from tether.runtime.records import (
    ApprovalReceived,
    BudgetExceeded,
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionLimited,
    ExecutionStarted,
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    PolicyViolation,
    SegmentStarted,
)

# A value kept as an artifact appears in a row as stored by its reference (which pins its
# bytes by SHA-256): a receipt hashes that.
_json = msgspec.json.Encoder(order="sorted", enc_hook=shown)

#: Facts a model call reports (OpenTelemetry GenAI's names where they apply).
_MODEL_FACTS = (
    "gen_ai_system",
    "gen_ai_model",
    "input_tokens",
    "output_tokens",
    "finish_reason",
    "cost_usd",
)


def value_sha256(value: Any) -> str:
    """SHA-256 of a value's canonical JSON (keys sorted), hex: what a receipt quotes."""
    return sha256(_json.encode(value)).hexdigest()


class GovernanceFacts(msgspec.Struct, frozen=True, gc=False):
    """What an evidence bundle tabulates; every list item carries its ``seq``."""

    events: list[dict[str, Any]]
    run: dict[str, Any]
    tool_calls: list[dict[str, Any]]
    model_calls: list[dict[str, Any]]
    policy_decisions: list[dict[str, Any]]
    approvals: list[dict[str, Any]]
    budget: dict[str, Any]
    output: Any = None
    memory_facts: list[dict[str, Any]] = []


def governance_facts(
    entries: Sequence[JournalEntry], tools: Mapping[str, str] | None = None
) -> GovernanceFacts:
    """The facts of one execution's decoded journal; ``tools`` maps node ids to tool names
    (from its workflow's IR), when known."""
    tools = tools or {}
    events: list[dict[str, Any]] = []
    run: dict[str, Any] = {}
    scheduled: dict[tuple[str, int, int], tuple[int, NodeScheduled]] = {}
    tool_calls: list[dict[str, Any]] = []
    model_calls: list[dict[str, Any]] = []
    policy: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    breaches: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    output: Any = None
    for entry in entries:
        rec, seq = entry.record, entry.seq
        node = getattr(rec, "node_id", None)
        events.append({"seq": seq, "type": rec.type, "at_ms": rec.at_ms, "node_id": node})
        if isinstance(rec, ExecutionStarted | SegmentStarted):
            run.update(
                started_seq=seq,
                started_at_ms=rec.at_ms,
                workflow_id=rec.workflow_id,
                workflow_version=rec.workflow_version,
                input_sha256=value_sha256(rec.input),
            )
        elif isinstance(rec, NodeScheduled):
            scheduled[(rec.node_id, rec.dispatch, rec.attempt)] = (seq, rec)
        elif isinstance(rec, NodeCompleted | NodeFailed) and rec.dispatch > 0:
            _call(rec, seq, scheduled, tools, tool_calls, model_calls)
            if isinstance(rec, NodeCompleted) and "memory_fact_id" in rec.facts:
                memory.append(_memory_fact(rec, seq, scheduled))
        elif isinstance(rec, PolicyViolation):
            policy.append(
                {
                    "seq": seq,
                    "decision": "denied",
                    "node_id": rec.node_id,
                    "tool": rec.tool,
                    "rule": rec.rule,
                    "call_id": rec.call_id,
                    "arguments_sha256": rec.arguments_sha256,
                }
            )
        elif isinstance(rec, ApprovalReceived):
            approvals.append(
                {
                    "seq": seq,
                    "node_id": rec.node_id,
                    "decision": rec.decision,
                    "user_id": rec.user_id,
                    "at_ms": rec.at_ms,
                    "comment": rec.comment,
                }
            )
        elif isinstance(rec, BudgetExceeded):
            breaches.append(
                {
                    "seq": seq,
                    "node_id": rec.node_id,
                    "limit": rec.limit,
                    "scope": rec.scope,
                    "spent": rec.spent,
                    "cap": rec.cap,
                    "projected": rec.projected,
                }
            )
        elif isinstance(rec, ExecutionCompleted):
            output = rec.result
            run.update(
                ended_seq=seq,
                ended_at_ms=rec.at_ms,
                status="completed",
                output_sha256=value_sha256(rec.result),
            )
        elif isinstance(rec, ExecutionFailed | ExecutionLimited | ExecutionCancelled):
            status = {
                ExecutionFailed: "failed",
                ExecutionLimited: "limit_exceeded",
                ExecutionCancelled: "cancelled",
            }[type(rec)]
            reason = rec.reason if isinstance(rec, ExecutionCancelled) else rec.error
            run.update(ended_seq=seq, ended_at_ms=rec.at_ms, status=status, reason=reason)
    budget = {
        "cost_usd": round(sum(float(m.get("cost_usd") or 0) for m in model_calls), 10),
        "tokens": sum(
            int(m.get("input_tokens") or 0) + int(m.get("output_tokens") or 0) for m in model_calls
        ),
        "breaches": breaches,
    }
    return GovernanceFacts(
        events, run, tool_calls, model_calls, policy, approvals, budget, output, memory
    )


def _memory_fact(
    rec: NodeCompleted, seq: int, scheduled: dict[tuple[str, int, int], tuple[int, NodeScheduled]]
) -> dict[str, Any]:
    """A fact a ``memory_write`` node wrote (or found written by an earlier try), as its
    completion recorded it; the scope is the user its hand-out named."""
    handed = scheduled.get((rec.node_id, rec.dispatch, rec.attempt))
    written = rec.output if isinstance(rec.output, dict) else {}
    return {
        "seq": seq,
        "node_id": rec.node_id,
        "scope": handed[1].input.get("user") if handed else None,
        "fact_id": rec.facts["memory_fact_id"],
        "subject": written.get("subject"),
        "content": written.get("content"),
        "at_ms": written.get("at_ms"),
        "supersedes": written.get("supersedes"),
        "written": bool(rec.facts.get("memory_written")),
    }


def _call(
    rec: NodeCompleted | NodeFailed,
    seq: int,
    scheduled: dict[tuple[str, int, int], tuple[int, NodeScheduled]],
    tools: Mapping[str, str],
    tool_calls: list[dict[str, Any]],
    model_calls: list[dict[str, Any]],
) -> None:
    handed = scheduled.get((rec.node_id, rec.dispatch, rec.attempt))
    facts = rec.facts if isinstance(rec, NodeCompleted) else {}
    if "gen_ai_model" in facts:
        call = {
            "seq": seq,
            "node_id": rec.node_id,
            "attempt": rec.attempt,
            "duration_ms": rec.duration_ms,
        }
        call.update({k: facts[k] for k in _MODEL_FACTS if k in facts})
        model_calls.append(call)
        return
    receipt: dict[str, Any] = {
        "seq": seq,
        "scheduled_seq": handed[0] if handed else None,
        "node_id": rec.node_id,
        "tool": tools.get(rec.node_id, ""),
        "attempt": rec.attempt,
        "arguments_sha256": value_sha256(handed[1].input) if handed else "",
        "worker_id": rec.worker_id or "engine",
        "duration_ms": rec.duration_ms,
    }
    if isinstance(rec, NodeCompleted):
        receipt.update(status="completed", result_sha256=value_sha256(rec.output))
    else:
        receipt.update(status="failed", error=f"{rec.error_type}: {rec.error}")
    tool_calls.append(receipt)
