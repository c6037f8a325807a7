"""A real ``tether dev`` for the dashboard tests: a subprocess on a loopback port with its
journal under the test's tmp folder, the tools of ``ui_tools``, and the environment a test
gives (``TETHER_TOKEN``); the workflows below registered over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec

from tether.ir import compile_yaml_text
from tether.testing.loopback import free_loopback_port as free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEADLINE = 30.0

FLOWS = {
    "pay": """
workflow: {id: pay, version: "1", start: review, state_schema: {n: {type: integer}}}
nodes:
  review:
    type: human_approval
    description: "Pay the invoice?"
    next:
      - {to: add, when: "review.decision == 'approved'"}
      - {to: end}
  add: {type: tool, tool: add_one, input: {n: $n}, output_key: n, next: end}
""",
    "steps": """
workflow: {id: steps, version: "2", start: first, state_schema: {n: {type: integer}}}
nodes:
  first: {type: tool, tool: add_one, input: {n: $n}, output_key: n, next: second}
  second: {type: tool, tool: flaky, input: {n: $n}, output_key: n,
           retry: {max_attempts: 3, backoff_initial_secs: 0.01}, next: end}
""",
    "broken": """
workflow: {id: broken, version: "1", start: only, state_schema: {n: {type: integer}}}
nodes:
  only: {type: tool, tool: boom, input: {n: $n}, output_key: n,
         retry: {max_attempts: 2, backoff_initial_secs: 0.01}, next: end}
""",
}


class UiEngine:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token

    def client(self) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@contextmanager
def ui_engine(tmp: Path, env: dict[str, str] | None = None) -> Iterator[UiEngine]:
    """A started engine with the test workflows registered; SIGKILLed on the way out."""
    port = free_port()
    log = tmp / f"dev-{port}.log"
    full_env = {
        **os.environ,
        "TETHER_DATABASE_URL": f"sqlite:///{tmp / 'engine.db'}",
        "TETHER_WORKER_PORT": "0",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "dev", "--modules", "ui_tools", "--port", str(port)],
        cwd=tmp, env=full_env, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip
    try:
        engine = UiEngine(f"http://127.0.0.1:{port}", (env or {}).get("TETHER_TOKEN"))
        wait_until(lambda: _healthy(engine.url), f"/health: {log}", proc=proc)
        with engine.client() as c:
            for text in FLOWS.values():
                ir = msgspec.to_builtins(compile_yaml_text(text, "flow.yaml"))
                c.post("/workflows", json={"ir": ir}).raise_for_status()
        yield engine
    finally:
        proc.kill()
        proc.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(
    check: Callable[[], Any], what: str, proc: subprocess.Popen[bytes] | None = None
) -> Any:
    """Poll ``check`` until it returns something true, within the deadline."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if proc is not None:
            assert proc.poll() is None, f"engine exited: {what}"
        got = check()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def start(c: httpx.Client, workflow_id: str, n: int = 1, execution_id: str | None = None) -> str:
    body: dict[str, Any] = {"workflow_id": workflow_id, "input": {"n": n}}
    if execution_id is not None:
        body["execution_id"] = execution_id
    r = c.post("/executions", json=body)
    r.raise_for_status()
    eid: str = r.json()["execution_id"]
    return eid


def status_is(c: httpx.Client, eid: str, *statuses: str) -> dict[str, Any] | None:
    view: dict[str, Any] = c.get(f"/executions/{eid}").json()
    return view if view["status"] in statuses else None
