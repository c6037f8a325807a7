"""Evidence bundles: the JSON verifies offline (no engine, no database) and names what was
edited; the PDF reads as the JSON says (checked through pdftotext and a rendered page)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
from audit_runs import run_counters

from tether.cli import main
from tether.governance import init_keys
from tether.governance.bundle import verify_bundle
from tether.governance.facts import governance_facts, value_sha256
from tether.governance.keys import load_keyring
from tether.runtime.records import (
    ApprovalReceived,
    BudgetExceeded,
    ExecutionLimited,
    ExecutionStarted,
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    PolicyViolation,
)

pytestmark = pytest.mark.anyio

POPPLER = "pdftotext and pdftoppm (Debian's poppler-utils: apt-get install poppler-utils)"


async def _cli(*args: str) -> int:
    return await anyio.to_thread.run_sync(main, ["audit", *args])


async def _exported(tmp_path: Path, fmt: str = "json") -> tuple[Path, Path, str]:
    """A signed run exported to a file; the database is gone afterwards."""
    db, keys = tmp_path / "t.db", tmp_path / "keys"
    [eid] = await run_counters(db, 1, init_keys(keys))
    out = tmp_path / f"bundle.{fmt}"
    args = ("export", eid, "--format", fmt, "-o", str(out), "--db", str(db), "--keys", str(keys))
    assert await _cli(*args) == 0
    for leftover in tmp_path.glob("t.db*"):
        leftover.unlink()  # verify-bundle works from the file alone
    return out, keys, eid


async def test_a_json_bundle_verifies_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, keys, eid = await _exported(tmp_path)
    bundle = json.loads(path.read_text())
    assert bundle["format"] == "tether-evidence-bundle/1"
    assert bundle["summary"]["tool_calls"] == 3 and bundle["summary"]["verified"] is True
    assert [c["tool"] for c in bundle["tool_calls"]] == ["add_one"] * 3
    assert bundle["output"] == {"n": 3}
    capsys.readouterr()
    assert await _cli("verify-bundle", str(path)) == 0
    assert await _cli("verify-bundle", str(path), "--keys", str(keys)) == 0
    out = capsys.readouterr().out
    assert f"{eid}: ok" in out and "from the bundle's own public keys" in out
    assert "from the trusted ring" in out


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda b: b["tool_calls"][1].update(tool="wire_money"), "tool_calls: does not match"),
        (lambda b: b["summary"].update(approvals=1), "summary: does not match"),
        (lambda b: b.update(output={"n": 4}), "output: does not match"),
        (lambda b: b["chain"]["rows"].pop(3), "chain: seq 4: row 4 is missing"),
        (lambda b: b["signatures"].clear(), "no signed head"),
    ],
)
async def test_an_edited_bundle_is_named(tmp_path: Path, edit: Any, named: str) -> None:
    path, _, _ = await _exported(tmp_path)
    bundle = json.loads(path.read_text())
    edit(bundle)
    report = verify_bundle(bundle)
    assert not report.ok and any(named in p for p in report.problems), report.problems


async def test_a_bundle_signed_by_another_key_fails_against_the_trusted_ring(
    tmp_path: Path,
) -> None:
    _, keys, _ = await _exported(tmp_path)
    forged, _, _ = await _exported(tmp_path / "other")  # another engine, another key
    report = verify_bundle(json.loads(forged.read_text()), load_keyring(keys))
    assert not report.ok and "not in the ring" in report.problems[0]


async def test_unreadable_bundles_get_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert await _cli("verify-bundle", str(bad)) == 1
    bad.write_text(json.dumps({"format": "something else"}))
    assert await _cli("verify-bundle", str(bad)) == 1
    lines = capsys.readouterr()
    assert len(lines.err.strip().splitlines()) == 1 and "not a readable" in lines.out


@pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdftoppm")), reason=f"needs {POPPLER}"
)
async def test_the_pdf_says_what_the_json_says(tmp_path: Path) -> None:
    path, _, eid = await _exported(tmp_path, "pdf")
    assert path.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        eid, "Evidence bundle", "Workflow: counter@1", "Status: completed",
        "Events: 8 (signed, immutable)", "Tool calls: 3", "Chain verified at export: yes",
        "Tool calls (3)", "add_one", "Signed chain heads (1)", "Events (8)",
    ):  # fmt: skip
        assert expected in text, expected
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    [page] = tmp_path.glob("page*.png")
    assert page.read_bytes().startswith(b"\x89PNG") and page.stat().st_size > 1000


def test_facts_of_every_kind_are_read_from_the_records() -> None:
    records = [
        ExecutionStarted(at_ms=1, execution_id="e", workflow_id="agent", workflow_version="1",
                         input={"q": "hi"}),
        NodeScheduled(at_ms=2, node_id="ask", attempt=1, dispatch=1, input={"q": "hi"}),
        NodeCompleted(at_ms=3, node_id="ask", dispatch=1, attempt=1, output="hello",
                      facts={"gen_ai_model": "m-1", "input_tokens": 10, "output_tokens": 5,
                             "cost_usd": 0.25}),
        PolicyViolation(at_ms=4, node_id="ask", tool="rm", call_id="c1", rule="not allowed",
                        arguments_sha256="ab"),
        NodeScheduled(at_ms=5, node_id="fetch", attempt=1, dispatch=2, input={"u": 1}),
        NodeFailed(at_ms=6, node_id="fetch", dispatch=2, attempt=1, error="boom",
                   error_type="IOError", worker_id="w1", duration_ms=7),
        ApprovalReceived(at_ms=8, node_id="ok", dispatch=1, decision="approved",
                         user_id="alice", comment="fine"),
        BudgetExceeded(at_ms=9, node_id="ask", limit="cost_usd", spent=0.25, cap=0.2),
        ExecutionLimited(at_ms=10, error="budget"),
    ]  # fmt: skip
    facts = governance_facts([JournalEntry(i + 1, r) for i, r in enumerate(records)],
                             {"fetch": "http_get"})  # fmt: skip
    assert [m["gen_ai_model"] for m in facts.model_calls] == ["m-1"]
    assert facts.budget["cost_usd"] == 0.25 and facts.budget["tokens"] == 15
    [call] = facts.tool_calls
    assert call["tool"] == "http_get" and call["status"] == "failed"
    assert call["worker_id"] == "w1" and call["scheduled_seq"] == 5
    assert call["arguments_sha256"] == value_sha256({"u": 1})
    assert facts.policy_decisions[0]["decision"] == "denied"
    assert facts.approvals[0]["user_id"] == "alice"
    assert facts.budget["breaches"][0]["limit"] == "cost_usd"
    assert facts.run["status"] == "limit_exceeded" and facts.run["ended_seq"] == 9
