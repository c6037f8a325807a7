"""An evidence bundle of a run whose values are artifacts (I9): the chain covers the rows as
stored, references included, so the bundle carries references (a value's digest, which pins
its bytes); its receipts hash them, and it exports and verifies offline like any other."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import msgspec
import pytest

from tether import Runtime, tool
from tether.cli import main
from tether.governance import HeadSigner, KeyRing, audit_log_of, init_keys, verify_stored
from tether.governance.bundle import verify_bundle
from tether.ir import compile_yaml_text
from tether.persistence import SqliteStore
from tether.persistence.integrity import SNAPSHOT_TYPE, record_checksum
from tether.runtime.internals import runtime_internals

pytestmark = pytest.mark.anyio

FLOW = """
workflow: {id: big, version: "1"}
nodes:
  make: {type: tool, tool: make, output_key: text, next: end}
"""


@tool
async def make() -> str:
    return "v" * 20_000


async def test_a_bundle_of_a_run_with_artifacts_exports_and_verifies_offline(
    tmp_path: Path,
) -> None:
    db, keys = tmp_path / "t.db", tmp_path / "keys"
    key = init_keys(keys)
    async with Runtime(f"sqlite:///{db}", tools=[make]) as rt:
        signer = HeadSigner(audit_log_of(runtime_internals(rt).services.store), key, lambda: 1)
        await signer.sign_pending()
        run = await rt.start(rt.register(compile_yaml_text(FLOW, "big.yaml")), {"big": "i" * 9000})
        await run.result()
        await signer.sign_pending()
    out = tmp_path / "bundle.json"
    args = ["audit", "export", run.id, "--format", "json", "-o", str(out), "--db", str(db),
            "--keys", str(keys)]  # fmt: skip
    assert await anyio.to_thread.run_sync(main, args) == 0
    bundle = json.loads(out.read_text())
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    [call] = bundle["tool_calls"]
    assert call["status"] == "completed" and len(call["result_sha256"]) == 64
    assert bundle["output"]["text"] == {"$artifact": bundle["output"]["text"]["$artifact"]}
    assert bundle["output"]["text"]["$artifact"].startswith("sha256:")


async def test_a_snapshot_holding_references_checks_against_the_chain(tmp_path: Path) -> None:
    """The chain's rows and the snapshot hold references; both are compared as values, through
    the runtime's store and through the file alone, and an edit is still named."""
    db = tmp_path / "t.db"
    flow = FLOW.replace("next: end", "next: again") + (
        "  again: {type: tool, tool: make, output_key: more, next: end}\n"
    )
    async with Runtime(f"sqlite:///{db}", tools=[make], snapshot_every=2) as rt:
        wf = rt.register(compile_yaml_text(flow, "big.yaml"))
        run = await rt.start(wf, {"parts": {"a": "p" * 5000, "b": "q" * 5000}})
        await run.result()
        verdict = await verify_stored(runtime_internals(rt).services.store, KeyRing(), run.id)
        assert verdict.ok and "matches" in verdict.snapshot, verdict
    async with SqliteStore(db) as store:
        verdict = await verify_stored(store, KeyRing(), run.id)
        assert verdict.ok and "matches" in verdict.snapshot, verdict
    with sqlite3.connect(db) as conn:  # the snapshot's state edited: another value's digest
        [(seq, payload)] = conn.execute(
            "SELECT seq, payload FROM snapshots ORDER BY seq DESC LIMIT 1").fetchall()  # fmt: skip
        state = msgspec.msgpack.decode(payload[1:])
        state["data"]["text"] = "w" * 20_000
        edited = payload[:1] + msgspec.msgpack.encode(state)
        checksum = record_checksum(run.id, seq, SNAPSHOT_TYPE, edited)
        conn.execute(
            "UPDATE snapshots SET payload = ?, checksum = ? WHERE seq = ?", (edited, checksum, seq)
        )
    async with SqliteStore(db) as store:
        verdict = await verify_stored(store, KeyRing(), run.id)
        assert not verdict.ok and verdict.snapshot == "edited", verdict
