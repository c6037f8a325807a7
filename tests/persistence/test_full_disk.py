"""A disk that fills up under the journal of a running ``tether dev``, then has room again.

The journal lives on a tmpfs of a few megabytes mounted by the test (the machine runs as root;
where mounting is not allowed the test is skipped, saying so). While the disk is full: a new
run is refused with a 503 naming the cause (``tether run`` prints it on one line, no
traceback), the runs whose next turn could not be written are not reported failed or broken,
and everything committed before stays readable. Once a file is removed: the same engine
process, without a restart, finishes the held runs and accepts the refused one again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from full_disk_tools import GATE_ENV, GATED_ID, GATED_YAML, WORKFLOW_ID, WORKFLOW_YAML

from tether.ir import compile_yaml_text
from tether.testing.loopback import free_loopback_port as free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DISK_SIZE = "8m"
DEADLINE = 60.0
POLL_SECS = 0.02
HELD_RUNS = 4

T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str) -> T:
    """Poll ``check`` (each call bounded by httpx's own timeout) until truthy, with a deadline."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(POLL_SECS)
    raise AssertionError(f"gave up after {DEADLINE:g}s waiting for {what}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE mounted for this test, unmounted after it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem has no room left; returns it (removing it frees)."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return filler
                chunk = chunk[: len(chunk) // 2]  # fill the last pages too


@contextlib.contextmanager
def engine(tmp_path: Path, db: Path, gate: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``tether dev`` on ``db`` running the tools in its own pool; killed at the end."""
    port, worker_port = free_port(), free_port()
    env = dict(os.environ, TETHER_EMBED_CRON="false", **{GATE_ENV: str(gate)})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)])
    err = tmp_path / "engine.err"
    with err.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tether.cli", "dev", "--modules", "full_disk_tools",
             "--db", str(db), "--port", str(port), "--worker-port", str(worker_port)],
            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=5.0) as client:

            def healthy() -> bool:
                assert proc.poll() is None, err.read_text()[-3000:]
                with contextlib.suppress(httpx.TransportError):
                    return client.get("/health").status_code == 200
                return False

            eventually(healthy, "the engine to answer /health")
        yield proc, url
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=DEADLINE)


def start(client: httpx.Client, workflow: str, run_id: str, x: int) -> httpx.Response:
    body = {"workflow_id": workflow, "input": {"x": x}, "execution_id": run_id}
    return client.post("/executions", json=body)


def view(client: httpx.Client, run_id: str) -> dict[str, Any]:
    resp = client.get(f"/executions/{run_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def ended(client: httpx.Client, run_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    views = {r: view(client, r) for r in run_ids}
    over = all(v["status"] in ("completed", "failed", "cancelled") for v in views.values())
    return views if over else None


@pytest.mark.slow
def test_full_disk_refuses_clearly_keeps_commits_and_recovers_without_restart(
    tmp_path: Path, small_disk: Path
) -> None:
    gate = tmp_path / "gate"  # outside the small disk
    with (
        engine(tmp_path, small_disk / "journal.db", gate) as (proc, url),
        httpx.Client(base_url=url, timeout=10.0) as client,
    ):
        for text in (WORKFLOW_YAML, GATED_YAML):
            ir = msgspec.to_builtins(compile_yaml_text(text))
            assert client.post("/workflows", json={"ir": ir}).status_code == 201
        done_before = [f"before{i}" for i in range(3)]
        for i, run_id in enumerate(done_before):
            assert start(client, WORKFLOW_ID, run_id, i).status_code == 201
        held = [f"held{i}" for i in range(HELD_RUNS)]
        for i, run_id in enumerate(held):  # each waits in its first step for the gate
            assert start(client, GATED_ID, run_id, 100 * i).status_code == 201
        committed = eventually(lambda: ended(client, done_before), "the first runs to end")
        journals = {r: client.get(f"/executions/{r}/events").json() for r in done_before}

        filler = fill(small_disk)
        gate.touch()  # the held steps finish now: their results find no room in the journal

        refused = start(client, WORKFLOW_ID, "during", 7)
        assert refused.status_code == 503, refused.text
        assert "disk is full" in refused.json()["error"]
        cli = subprocess.run(
            [sys.executable, "-m", "tether.cli", "run", WORKFLOW_ID, "--engine", url,
             "--input", '{"x": 1}'],
            cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE,
        )  # fmt: skip
        assert cli.returncode == 1, cli.stdout + cli.stderr
        assert "disk is full" in cli.stderr and "Traceback" not in cli.stderr, cli.stderr
        assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr

        # Room comes back only after every held run's turn failed to be written (the
        # journal writer's log says so), so each of them has to be picked up again.
        log = tmp_path / "engine.err"
        eventually(
            lambda: all(f"turn of execution {r} at seq" in log.read_text() for r in held),
            "every held run's turn to fail for want of room",
        )
        for run_id in done_before:  # what was committed is all still there
            assert view(client, run_id) == committed[run_id]
            assert client.get(f"/executions/{run_id}/events").json() == journals[run_id]
        for run_id in held:  # not failed, not broken: waiting for room
            assert view(client, run_id)["status"] == "running"

        filler.unlink()  # room again; the same engine process goes on by itself
        finished = eventually(lambda: ended(client, held), "the held runs to finish")
        for i, run_id in enumerate(held):
            assert finished[run_id]["status"] == "completed", finished[run_id]
            assert finished[run_id]["current_state"]["x"] == 100 * i + 11
        again = start(client, WORKFLOW_ID, "during", 7)  # the refused run, same id
        assert again.status_code == 201, again.text
        last = eventually(lambda: ended(client, ["during"]), "the resubmitted run to end")
        assert last["during"]["status"] == "completed"
        assert last["during"]["current_state"]["x"] == 8
        for run_id in done_before:
            assert client.get(f"/executions/{run_id}/events").json() == journals[run_id]
        assert proc.poll() is None  # never restarted
