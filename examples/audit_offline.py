"""The audit log end to end, offline: a signed run, its evidence bundle, checked without the
engine or the database, and an edit to the bundle named.

    python examples/audit_offline.py [OUT_DIR]

Makes an Ed25519 key, runs examples/counter.yaml on a fresh SQLite file with a head signer
following the journal, checks the chain with `tether audit verify`, exports the bundle as JSON
(and as PDF when fpdf2 is installed), deletes the database, verifies the bundle with
`tether audit verify-bundle`, then edits a tool call's receipt in a copy and verifies again.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tether import Runtime, tool  # noqa: E402
from tether.cli import main as tether  # noqa: E402
from tether.governance import engine_signer, init_keys  # noqa: E402
from tether.runtime.internals import runtime_internals  # noqa: E402


@tool
async def add_one(n: int) -> int:
    return n + 1


async def signed_run(db: Path, keys: Path) -> str:
    async with Runtime(f"sqlite:///{db}", tools=[add_one]) as rt:
        services = runtime_internals(rt).services
        signer = engine_signer(services.store, services.clock, keys)
        assert signer is not None
        async with signer:  # signs the heads every second, and once more on the way out
            run = await rt.start(rt.register_yaml(HERE / "counter.yaml"), {"n": 0})
            print(f"run {run.id}: {await run.result()}")
    return run.id


def demo(out: Path) -> int:
    db, keys = out / "runtime.db", out / "keys"
    print(f"key {init_keys(keys).key_id} in {keys}")
    eid = asyncio.run(signed_run(db, keys))
    where = ["--db", str(db), "--keys", str(keys)]
    status = tether(["audit", "verify", eid, *where])
    bundle = out / f"audit_{eid}.json"
    status |= tether(["audit", "export", eid, "--format", "json", "-o", str(bundle), *where])
    try:
        import fpdf  # noqa: F401
    except ImportError:
        print("(no fpdf2: pip install 'tether[pdf]' for the PDF)")
    else:
        pdf = str(bundle.with_suffix(".pdf"))
        status |= tether(["audit", "export", eid, "--format", "pdf", "-o", pdf, *where])
    for leftover in out.glob("runtime.db*"):
        leftover.unlink()
    print("database deleted; the bundle alone:")
    status |= tether(["audit", "verify-bundle", str(bundle), "--keys", str(keys)])
    edited = json.loads(bundle.read_text())
    edited["tool_calls"][0]["tool"] = "wire_money"
    forged = out / "edited.json"
    forged.write_text(json.dumps(edited))
    print("a copy with a tool call's receipt edited:")
    if tether(["audit", "verify-bundle", str(forged), "--keys", str(keys)]) != 1:
        print("the edit was not caught")
        return 1
    return status


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.mkdir(parents=True, exist_ok=True)
        raise SystemExit(demo(target))
    with tempfile.TemporaryDirectory() as tmp:
        raise SystemExit(demo(Path(tmp)))
