"""An evidence bundle as a PDF a person reads: a summary page, then a section per table.

Rendered from the JSON bundle (``bundle.export_bundle``) with fpdf2 (``pip install
'tether[pdf]'``); the JSON stays the thing to verify, the PDF quotes its heads and key ids.

Example::

    pdf_bytes = render_pdf(bundle)
    Path("audit_exec_1.pdf").write_bytes(pdf_bytes)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


class PdfUnavailable(Exception):
    """fpdf2 is not installed."""


def render_pdf(bundle: dict[str, Any]) -> bytes:
    """The PDF of ``bundle``; PdfUnavailable (saying what to install) without fpdf2."""
    try:
        from fpdf import FPDF  # an optional extra: imported only when a PDF is asked for
    except ImportError as exc:
        raise PdfUnavailable(
            f"a PDF needs fpdf2: pip install 'tether[pdf]' ({exc}); --format json needs nothing"
        ) from exc
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(f"Evidence bundle {bundle['execution']['execution_id']}")
    pdf.set_creator("Tether")
    _summary_page(pdf, bundle)
    _section(
        pdf,
        "Tool calls",
        (
            "seq",
            "node",
            "tool",
            "attempt",
            "worker",
            "ms",
            "status",
            "arguments sha256",
            "result sha256",
        ),
        [
            (
                c["seq"],
                c["node_id"],
                c["tool"],
                c["attempt"],
                c["worker_id"],
                c["duration_ms"],
                c["status"],
                _short(c["arguments_sha256"]),
                _short(c.get("result_sha256") or c.get("error", "")),
            )
            for c in bundle["tool_calls"]
        ],
    )
    _section(
        pdf,
        "Model calls",
        ("seq", "node", "model", "tokens in", "tokens out", "cost USD"),
        [
            (
                c["seq"],
                c["node_id"],
                c.get("gen_ai_model", ""),
                c.get("input_tokens", ""),
                c.get("output_tokens", ""),
                c.get("cost_usd", ""),
            )
            for c in bundle["model_calls"]
        ],
    )
    _section(
        pdf,
        "Policy decisions",
        ("seq", "decision", "node", "tool", "rule"),
        [
            (p["seq"], p["decision"], p["node_id"], p["tool"], p["rule"])
            for p in bundle["policy_decisions"]
        ],
    )
    _section(
        pdf,
        "Approvals",
        ("seq", "node", "decision", "by", "at", "comment"),
        [
            (a["seq"], a["node_id"], a["decision"], a["user_id"], _when(a["at_ms"]), a["comment"])
            for a in bundle["approvals"]
        ],
    )
    budget = bundle["budget"]
    _section(
        pdf,
        f"Budget (spent: {budget['cost_usd']} USD, {budget['tokens']} tokens)",
        ("seq", "node", "limit", "scope", "spent", "cap"),
        [
            (b["seq"], b["node_id"], b["limit"], b["scope"], b["spent"], b["cap"])
            for b in budget["breaches"]
        ],
    )
    _section(
        pdf,
        "Memory facts written",
        ("seq", "node", "scope", "fact id", "subject", "content"),
        [
            (m["seq"], m["node_id"], m["scope"], m["fact_id"], m["subject"], m["content"])
            for m in bundle.get("memory_facts") or ()
        ],
    )
    _section(
        pdf,
        "Events",
        ("seq", "type", "node", "at"),
        [(e["seq"], e["type"], e["node_id"] or "", _when(e["at_ms"])) for e in bundle["events"]],
    )
    _section(
        pdf,
        "Signed chain heads",
        ("seq", "key id", "chain link", "signed at"),
        [
            (s["seq"], s["key_id"], _short(s["link"]), _when(s["signed_at_ms"]))
            for s in bundle["signatures"]
        ],
    )
    return bytes(pdf.output())


def _summary_page(pdf: Any, bundle: dict[str, Any]) -> None:
    ex, summary, run = bundle["execution"], bundle["summary"], bundle["run"]
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, "Evidence bundle", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    signed = (
        "signed, immutable"
        if summary["signed_through"] == summary["head_seq"]
        else (
            f"chained; signed through seq {summary['signed_through']}"
            if summary["signed_through"]
            else "chained, not signed"
        )
    )
    lines = [
        f"Execution: {ex['execution_id']}",
        f"Workflow: {ex.get('workflow_id', '')}@{ex.get('workflow_version', '')}",
        f"Status: {ex.get('status', run.get('status', ''))}",
        f"Started: {_when(run.get('started_at_ms'))}    Ended: {_when(run.get('ended_at_ms'))}",
        "",
        f"Events: {summary['events']} ({signed}) · Tool calls: {summary['tool_calls']} · "
        f"Model calls: {summary['model_calls']} · Policy: {summary['policy_decisions']} · "
        f"Approvals: {summary['approvals']} · Budget breaches: {summary['budget_breaches']}",
        f"Spent: {bundle['budget']['cost_usd']} USD, {bundle['budget']['tokens']} tokens",
        "",
        f"Chain verified at export: {'yes' if summary['verified'] else 'NO'}; "
        f"chained from seq {summary['chained_from']}, head at seq {summary['head_seq']}",
        f"Head: {bundle['chain']['head'] or '-'}",
        f"Signing keys: {', '.join(summary['key_ids']) or 'none'}",
        _redaction_line(bundle),
        "",
        f"Input sha256: {run.get('input_sha256', '-')}",
        f"Output sha256: {run.get('output_sha256', '-')}",
        "",
        "Verify offline: tether audit verify-bundle <the JSON bundle> --keys <trusted key ring>",
    ]
    for line in lines:
        pdf.multi_cell(0, 6, _latin(line), new_x="LMARGIN", new_y="NEXT")


def _redaction_line(bundle: dict[str, Any]) -> str:
    note = bundle.get("redaction")
    if not note:
        return "Redaction: none (every row's content verifies)"
    return (
        f"Redaction: {note['mode']}, {len(note['rows'])} rows redacted (their content is not "
        "checkable from this bundle; the chain around them is)"
    )


def _section(pdf: Any, title: str, header: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, _latin(f"{title} ({len(rows)})"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    if not rows:
        pdf.cell(0, 6, "none", new_x="LMARGIN", new_y="NEXT")
        return
    with pdf.table(text_align="LEFT", line_height=4.5, wrapmode="CHAR") as table:
        table.row([_latin(h) for h in header])
        for values in rows:
            table.row([_latin("" if v is None else str(v)) for v in values])


def _when(ms: Any) -> str:
    if not isinstance(ms, int):
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _short(digest: str) -> str:
    return digest[:16] + "..." if len(digest) > 19 else digest


def _latin(text: str) -> str:
    # The core PDF fonts are Latin-1; anything else shows as '?' rather than failing.
    return text.encode("latin-1", "replace").decode("latin-1")
