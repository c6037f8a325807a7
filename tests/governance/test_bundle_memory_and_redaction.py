"""Evidence bundles carry the memory facts a run wrote (verified against the chain, so an edited
fact is named), and are exported redacted under the run's ``governance.redact``: no PII in
the JSON or the PDF, the chain and signatures still verify, and ``--unredacted`` gives the
bundle whose every row's content verifies."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from tether import Runtime, tool
from tether.cli import main
from tether.governance import HeadSigner, audit_log_of, init_keys
from tether.governance.bundle import verify_bundle
from tether.ir import compile_yaml_text
from tether.runtime.internals import runtime_internals

pytestmark = pytest.mark.anyio

EMAIL, CARD, IBAN = "ann.smith@example.org", "4111 1111 1111 1111", "NL91ABNA0417164300"

FLOW = """
workflow: {id: kyc, version: "1"}
governance:
  redact: {mode: mask}
nodes:
  lookup: {type: tool, tool: lookup, input: {who: $who}, output_key: profile, next: bump}
  bump: {type: tool, tool: bump, input: {n: $n}, output_key: n, next: remember}
  remember: {type: memory_write, user: $user, subject: contact, content: $who, next: end}
"""


@tool
async def bump(n: int) -> int:
    return n + 1


@tool
async def lookup(who: str) -> dict[str, str]:
    return {"email": who, "card": CARD, "note": f"IBAN {IBAN}, mail {who}"}


async def _signed_run(tmp_path: Path, flow: str = FLOW) -> tuple[Path, Path, str]:
    db, keys = tmp_path / "t.db", tmp_path / "keys"
    key = init_keys(keys)
    async with Runtime(f"sqlite:///{db}", tools=[lookup, bump]) as rt:
        signer = HeadSigner(audit_log_of(runtime_internals(rt).services.store), key, lambda: 1)
        await signer.sign_pending()
        run = await rt.start(
            rt.register(compile_yaml_text(flow)), {"who": EMAIL, "user": "u1", "n": 1}
        )
        await run.result()
        await signer.sign_pending()
    return db, keys, run.id


async def _export(db: Path, keys: Path, eid: str, out: Path, *extra: str) -> None:
    args = ["audit", "export", eid, "-o", str(out), "--db", str(db), "--keys", str(keys), *extra]
    assert await anyio.to_thread.run_sync(main, args) == 0


async def test_the_bundle_carries_the_memory_facts_and_names_an_edited_one(
    tmp_path: Path,
) -> None:
    plain = FLOW.replace("governance:\n  redact: {mode: mask}\n", "")  # nothing to redact
    db, keys, eid = await _signed_run(tmp_path, plain)
    out = tmp_path / "b.json"
    await _export(db, keys, eid, out)
    bundle = json.loads(out.read_text())
    [fact] = bundle["memory_facts"]
    assert fact["scope"] == "u1" and fact["subject"] == "contact" and fact["content"] == EMAIL
    assert fact["fact_id"] == f"{eid}/remember/1" and fact["written"] is True
    assert bundle["summary"]["memory_facts"] == 1
    assert verify_bundle(bundle).ok

    edited = json.loads(out.read_text())
    edited["memory_facts"][0]["content"] = "bob@example.org"
    report = verify_bundle(edited)
    assert not report.ok and "memory_facts: does not match the chain's records" in str(
        report.problems
    )
    out.write_text(json.dumps(edited))
    assert await anyio.to_thread.run_sync(main, ["audit", "verify-bundle", str(out)]) == 1

    dropped = json.loads(json.dumps(bundle))
    del dropped["memory_facts"]  # a fact left out is as much an edit
    assert not verify_bundle(dropped).ok


def _payloads(bundle: dict[str, Any]) -> str:
    """Every row's payload decoded, as text (what a reader of the JSON could decode)."""
    rows = bundle["chain"]["rows"]
    return json.dumps([msgspec.msgpack.decode(base64.b64decode(r["payload"])) for r in rows])


async def test_a_redacted_bundle_holds_no_pii_and_still_verifies(tmp_path: Path) -> None:
    db, keys, eid = await _signed_run(tmp_path)
    out = tmp_path / "b.json"
    await _export(db, keys, eid, out)
    text = out.read_text()
    bundle = json.loads(text)
    for secret in (EMAIL, CARD, IBAN, "ann.smith"):
        assert secret not in text and secret not in _payloads(bundle), secret
    assert bundle["memory_facts"][0]["content"] == "[REDACTED:email]"
    assert bundle["output"]["profile"]["card"] == "[REDACTED:card]"
    assert bundle["redaction"]["mode"] == "mask" and bundle["redaction"]["rows"]
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert report.verdict is not None and report.verdict.redacted == len(
        bundle["redaction"]["rows"]
    )
    assert "rows redacted (content not checkable here)" in report.verdict.describe()

    full = tmp_path / "full.json"
    await _export(db, keys, eid, full, "--unredacted")
    unredacted = json.loads(full.read_text())
    assert EMAIL in _payloads(unredacted) and "redaction" not in unredacted
    assert verify_bundle(unredacted).ok


async def test_a_redacted_bundle_still_names_edits_around_the_redacted_rows(
    tmp_path: Path,
) -> None:
    db, keys, eid = await _signed_run(tmp_path)
    out = tmp_path / "b.json"
    await _export(db, keys, eid, out)
    bundle = json.loads(out.read_text())
    hidden = set(bundle["redaction"]["rows"])
    rows = bundle["chain"]["rows"]
    clear = next(r for r in rows if r["seq"] not in hidden and r["seq"] > min(hidden))

    edited = json.loads(json.dumps(bundle))
    row = next(r for r in edited["chain"]["rows"] if r["seq"] == clear["seq"])
    record = msgspec.msgpack.decode(base64.b64decode(row["payload"]))
    record["at_ms"] = record.get("at_ms", 0) + 1
    row["payload"] = base64.b64encode(msgspec.msgpack.encode(record)).decode()
    report = verify_bundle(edited)
    assert not report.ok and f"seq {clear['seq']}" in report.problems[0]

    # A redacted row's link is taken as given, and the clear row after it checks it.
    relinked = json.loads(json.dumps(bundle))
    before = next(r for r in relinked["chain"]["rows"] if r["seq"] == clear["seq"] - 1)
    assert before["seq"] in hidden
    before["link"] = "00" * 32
    report = verify_bundle(relinked)
    assert not report.ok and f"seq {clear['seq']}" in report.problems[0], report.problems


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs pdftotext (poppler-utils)")
async def test_the_redacted_pdf_holds_no_pii_and_lists_the_memory_facts(tmp_path: Path) -> None:
    db, keys, eid = await _signed_run(tmp_path)
    out = tmp_path / "b.pdf"
    await _export(db, keys, eid, out, "--format", "pdf")
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Memory facts written (1)" in text and "[REDACTED:email]" in text
    assert "Redaction: mask" in text
    for secret in (EMAIL, CARD, IBAN, "ann.smith"):
        assert secret not in text, secret


async def test_export_names_a_fact_edited_in_the_facts_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = FLOW.replace("governance:\n  redact: {mode: mask}\n", "")
    db, keys, eid = await _signed_run(tmp_path, plain)
    out = tmp_path / "b.json"
    await _export(db, keys, eid, out)
    assert json.loads(out.read_text())["memory_store"] == {"checked": 1, "mismatches": []}
    conn = sqlite3.connect(db)
    conn.execute("UPDATE memory_facts SET content = 'bob@example.org'")  # behind the engine
    conn.commit()
    conn.close()
    capsys.readouterr()
    args = ["audit", "export", eid, "-o", str(out), "--db", str(db), "--keys", str(keys)]
    assert await anyio.to_thread.run_sync(main, args) == 1
    err = capsys.readouterr().err
    assert f"memory fact {eid}/remember/1" in err and "content differ" in err
    assert "bob@example.org" not in err  # a value is never quoted: it may be personal data
    [mismatch] = json.loads(out.read_text())["memory_store"]["mismatches"]
    assert mismatch["fact_id"] == f"{eid}/remember/1"
    assert verify_bundle(json.loads(out.read_text())).ok  # the chain itself was not touched
