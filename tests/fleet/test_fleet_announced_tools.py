"""An engine without the users' code: a real ``tether dev`` whose Python path cannot import the
tool's module, a real ``tether worker`` that can (the module is in a temporary directory on the
worker's PYTHONPATH only), and the ``tether`` CLI between them.

A run submitted before any worker joined is held, says why (``tether run``, ``tether inspect``,
the API), and completes once the worker joins and announces the tool; the engine binds the
arguments by the announced parameters, so a node whose input is not a parameter is refused at
registration and one whose required parameter has no value fails with a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tether.testing.dev_engine import DevEngine, start_dev_engine
from tether.testing.loopback import free_loopback_port as _free_port

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0

TOOLS = """
from tether import tool


@tool
async def shout(text: str, times: int = 1) -> str:
    return (text.upper() + "!") * times
"""

WORKFLOW = """
workflow: {id: loud, version: "1", start: first}
nodes:
  first:
    type: tool
    tool: shout
    input: {text: $word, times: 2}
    output_key: loud
    labels: {queue: remote}
    next: end
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[DevEngine, int, Path]]:
    """The engine (in ``tmp_path/engine``), its worker port, and the tools' directory."""
    tools = tmp_path / "worker_side"
    tools.mkdir()
    (tools / "remote_shout.py").write_text(TOOLS)
    home = tmp_path / "engine"
    home.mkdir()
    (home / "loud.yaml").write_text(WORKFLOW)
    worker_port = _free_port()
    with start_dev_engine(home, worker_port=worker_port) as engine:
        yield engine, worker_port, tools


def _cli(engine: DevEngine, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TETHER_ENGINE_URL": engine.url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", *args], cwd=engine.database.parent, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _worker(port: int, tools: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tools)])}
    args = ["worker", "--engine", f"tcp://127.0.0.1:{port}", "--queue", "remote"]
    args += ["--modules", "remote_shout", "--worker-id", "gpu-1"]
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", *args], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


class _Lines:
    """A process's stdout read in a thread; ``wait_for`` blocks on a condition, not a sleep."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in ln for ln in self.lines), timeout=DEADLINE
            )
            assert found, f"{text!r} not printed; got:\n" + "\n".join(self.lines)
            return next(ln for ln in self.lines if text in ln)


def test_a_run_waits_for_a_worker_serving_its_tool_then_completes(
    fleet: tuple[DevEngine, int, Path],
) -> None:
    engine, worker_port, tools = fleet
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = [sys.executable, "-c", "import remote_shout"]
    cannot = subprocess.run(probe, cwd=engine.database.parent, env=env, capture_output=True)
    assert cannot.returncode != 0  # the engine's side cannot import the tool's module

    run = _cli(engine, "run", "loud.yaml", "-i", '{"word": "hi"}')
    out = _Lines(run)
    eid = out.wait_for(" started").split()[1]
    held = out.wait_for("waiting for a worker")
    assert held.split()[1:3] == ["[first]", "…"]
    assert "waiting for a worker serving tool 'shout' on queue 'remote'" in held
    out.wait_for("start one: tether worker")
    assert run.poll() is None  # still following the held run
    view = httpx.get(f"{engine.url}/executions/{eid}").json()
    assert view["status"] == "running"
    assert view["held"] == [
        {"node_id": "first", "tool": "shout", "queue": "remote",
         "reason": "waiting for a worker serving tool 'shout' on queue 'remote'"},
    ]  # fmt: skip
    inspect = _cli(engine, "inspect", eid)
    shown, _ = inspect.communicate(timeout=DEADLINE)
    assert "first" in shown and "waiting for a worker serving tool 'shout'" in shown

    worker = _worker(worker_port, tools)
    try:
        # The reader thread owns stdout: wait for its line, then the exit, then stderr
        # (communicate() would read stdout too, and take lines the thread had not seen yet).
        assert out.wait_for("completed ·").startswith("▸ completed")
        assert run.wait(timeout=DEADLINE) == 0
        assert run.stderr is not None
        err = run.stderr.read()
        assert "warning: workflow loud@1: no engine module and no joined worker serves" in err
        assert json.loads(out.wait_for("result:").split("result: ", 1)[1]) == {
            "word": "hi", "loud": "HI!HI!"
        }  # fmt: skip
        view = httpx.get(f"{engine.url}/executions/{eid}").json()
        assert view["held"] == [] and view["output"]["loud"] == "HI!HI!"
        shout = httpx.get(f"{engine.url}/workers").json()["tools"]["shout"]
        assert shout["params"] == ["text", "times"] and shout["required"] == ["text"]
        assert shout["workers"] == {"gpu-1": ["remote"]}
        assert shout["schema"]["properties"]["times"] == {"type": "integer"}
        events = httpx.get(f"{engine.url}/executions/{eid}/events").json()["events"]
        done = [e["kind"] for e in events if e["kind"]["type"] == "node_completed"]
        assert done[0]["worker_id"] == "gpu-1"  # run by the worker, bound by the engine
        scheduled = next(e["kind"] for e in events if e["kind"]["type"] == "node_scheduled")
        assert scheduled["input"] == {"text": "hi", "times": 2}

        # Now that a worker announced shout(text, times=1), a node whose input names another
        # parameter is refused at registration, as for a tool the engine has.
        wrong = WORKFLOW.replace("id: loud", "id: wrong").replace("$word, times", "$word, colour")
        (engine.database.parent / "wrong.yaml").write_text(wrong)
        refused = _cli(engine, "run", "wrong.yaml", "-i", '{"word": "hi"}')
        _, err = refused.communicate(timeout=DEADLINE)
        assert refused.returncode != 0
        assert "input 'colour' is not a parameter of tool 'shout'" in err
        assert "(parameters: text, times)" in err and "Traceback" not in err

        # A required parameter with no value: the node fails at once, saying which.
        unbound = WORKFLOW.replace("id: loud", "id: unbound").replace(
            "input: {text: $word, times: 2}", "input: {times: 2}"
        )
        (engine.database.parent / "unbound.yaml").write_text(unbound)
        failed = _cli(engine, "run", "unbound.yaml", "-i", '{"word": "hi"}')
        stdout, err = failed.communicate(timeout=DEADLINE)
        assert failed.returncode == 1, err
        assert "tool 'shout' needs text: not in state and not in the node's input" in stdout
        assert "warning" not in err  # the tool is served now: nothing to warn of
    finally:
        worker.terminate()
        worker.wait(timeout=DEADLINE)
        if run.poll() is None:
            run.kill()
