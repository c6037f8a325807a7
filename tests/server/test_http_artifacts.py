"""The artifact store over HTTP on a real ``tether dev`` (I9): bytes in, their SHA-256 out,
stored once; verified bytes back (404 unknown, 400 malformed, 401 without a token); the
events view shows a large step result as its reference, or the value with
``?artifacts=inline``; and a sweep (``tether artifacts gc``) removes an upload nothing
references once old enough, never a referenced artifact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import httpx
import msgspec
from test_server_http import ir_of, running_engine, wait_terminal

TOKEN = "artifact-test-token-0123456789"
FLOW = """
workflow: {id: big, version: "1"}
nodes:
  make: {type: tool, tool: big_text, input: {size: 20000}, output_key: text, next: end}
"""


def test_artifacts_over_http(tmp_path: object) -> None:
    with running_engine(tmp_path, {"TETHER_TOKEN": TOKEN}) as e:  # type: ignore[arg-type]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=e.url, headers=auth, timeout=10) as c:
            body = b"\x00 some bytes \xff" * 100
            digest = hashlib.sha256(body).hexdigest()
            raw = {"Content-Type": "application/octet-stream"}
            put = c.post("/artifacts", content=body, headers=raw)
            assert put.status_code == 201 and put.json() == {
                "digest": f"sha256:{digest}", "size": len(body)}  # fmt: skip
            again = c.post("/artifacts", content=body, headers=raw).json()
            assert again["digest"] == f"sha256:{digest}"
            as_text = c.post("/artifacts", content=body, headers={"Content-Type": "text/plain"})
            assert as_text.status_code == 415  # a page could send that without a preflight
            got = c.get(f"/artifacts/sha256:{digest}")
            assert got.status_code == 200 and got.content == body
            assert got.headers["content-type"] == "application/octet-stream"
            assert c.get(f"/artifacts/{digest}").content == body
            unknown = c.get(f"/artifacts/{'0' * 64}")
            assert unknown.status_code == 404 and "0" * 64 in unknown.json()["error"]
            bad = c.get("/artifacts/not-a-digest")
            assert bad.status_code == 400 and "64 lowercase hex" in bad.json()["error"]
            assert httpx.get(f"{e.url}/artifacts/{digest}").status_code == 401
            assert httpx.post(f"{e.url}/artifacts", content=b"x", headers=raw).status_code == 401

            assert c.post("/workflows", json={"ir": ir_of(FLOW)}).is_success
            eid = c.post("/executions", json={"workflow_id": "big"}).json()["execution_id"]
            assert wait_terminal(c, eid)["status"] == "completed"
            events = c.get(f"/executions/{eid}/events").json()["events"]
            [done] = [ev["kind"] for ev in events if ev["kind"]["type"] == "node_completed"]
            ref = done["output"]["$artifact"]
            value = msgspec.msgpack.encode("x" * 20000)  # an artifact is the value's msgpack
            assert ref == f"sha256:{hashlib.sha256(value).hexdigest()}"
            assert c.get(f"/artifacts/{ref}").content == value
            inline = c.get(f"/executions/{eid}/events", params={"artifacts": "inline"}).json()
            [whole] = [
                ev["kind"] for ev in inline["events"] if ev["kind"]["type"] == "node_completed"
            ]
            assert whole["output"] == "x" * 20000
            wrong = c.get(f"/executions/{eid}/events", params={"artifacts": "some"})
            assert wrong.status_code == 422 and "ref or inline" in wrong.json()["error"]

            kept = c.post("/artifacts/sweep").json()  # min_age 3600 s: the upload is young
            assert kept["removed"] == [] and kept["young"] == 1 and kept["referenced"] == 1
            cli = subprocess.run(
                [sys.executable, "-m", "tether.cli", "artifacts", "gc", "--min-age", "0", "--json"],
                env={**os.environ, "TETHER_ENGINE_URL": e.url, "TETHER_TOKEN": TOKEN},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert cli.returncode == 0, cli.stderr
            swept = json.loads(cli.stdout)
            assert swept["removed"] == [f"sha256:{digest}"]  # the upload; never the result
            assert c.get(f"/artifacts/{digest}").status_code == 404
            assert c.get(f"/artifacts/{ref}").content == value
            assert c.post("/artifacts/sweep", params={"min_age": -1}).status_code == 400
