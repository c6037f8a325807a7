"""``python -m tether.cli worker`` as a real subprocess against a test engine on 127.0.0.1:
runs grants, drains on SIGTERM, exits at once on a second signal, and reports user errors in one
line with the documented exit status, never a traceback (I10)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from worker_engine import TestEngine, engine_on, grant

from tether.fleet import LeaseRef, Result
from tether.testing.loopback import free_loopback_port as free_port

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def start_worker(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def finish(proc: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str]:
    """Wait (bounded, off the event loop) for the process; its exit status and stderr."""
    try:
        _, err = await anyio.to_thread.run_sync(lambda: proc.communicate(timeout=timeout))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


async def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 20) -> str:
    """The worker's stderr lines up to the first holding ``text`` (read off the event loop)."""
    assert proc.stderr is not None
    lines: list[str] = []
    with anyio.fail_after(timeout):
        while not lines or text not in lines[-1]:
            line = await anyio.to_thread.run_sync(proc.stderr.readline, abandon_on_cancel=True)
            assert line, "".join(lines) + "(stderr closed)"
            lines.append(line)
    return "".join(lines)


def worker_args(endpoint: str, *extra: str) -> list[str]:
    return ["--engine", endpoint, "--modules", "worker_cli_tools", "--worker-id", "cli", *extra]


def holds(engine: TestEngine, work_item_id: str) -> bool:
    return bool(engine.heartbeats) and any(
        ref.work_item_id == work_item_id for ref in engine.heartbeats[-1].leases
    )


async def test_cli_worker_runs_grants_from_the_engine_and_drains_on_sigterm() -> None:
    engine = TestEngine()
    async with engine_on(engine) as broker:
        engine.add(
            grant("e", "echo", {"value": {"k": [1, 2]}}, fence=2),
            grant("a", "add", {"a": 20, "b": 22}),
        )
        proc = start_worker(*worker_args(broker.endpoint, "--queue", "python_tool"))
        try:
            await engine.wait_until(lambda: len(engine.outcomes) == 2, timeout=20)
            assert engine.joined[0].tools == (
                "add",
                "echo",
                "run_code",
                "slow",
                "tether.a2a",
                "tether.eval",
                "tether.http",
                "tether.mcp",
                "tether.model",
                "tether.run_code",
            )
            assert engine.joined[0].queues == ("python_tool",)
        finally:
            proc.send_signal(signal.SIGTERM)
            status, err = await finish(proc)
    assert status == 0, err
    assert "Traceback" not in err
    e, a = engine.results()["e"], engine.results()["a"]
    assert isinstance(e, Result) and (e.ok, e.output, e.fence) == (True, {"k": [1, 2]}, 2)
    assert isinstance(a, Result) and (a.ok, a.output) == (True, 42)


async def test_sigterm_while_a_tool_runs_lets_it_finish_and_report_then_exits_0() -> None:
    engine = TestEngine()
    async with engine_on(engine) as broker:
        engine.add(grant("s", "slow", {"secs": 0.5, "value": "finished"}, fence=3))
        proc = start_worker(*worker_args(broker.endpoint))
        try:
            await engine.wait_until(lambda: holds(engine, "s"), timeout=20)
            proc.send_signal(signal.SIGTERM)
            out = await engine.wait_until(lambda: engine.outcome("s"))
            await engine.wait_until(lambda: engine.left)
        finally:
            status, err = await finish(proc)
    assert status == 0, err
    assert isinstance(out, Result)
    assert out == Result(
        work_item_id="s", fence=3, ok=True, output="finished", duration_ms=out.duration_ms
    )
    assert engine.left == ["bye: drained"]
    assert "SIGTERM received; draining 1 in-flight tool(s)" in err
    assert "Traceback" not in err


async def test_a_second_signal_exits_at_once_without_draining() -> None:
    engine = TestEngine()
    async with engine_on(engine) as broker:
        engine.add(grant("s", "slow", {"secs": 60, "value": None}))
        proc = start_worker(*worker_args(broker.endpoint))
        seen = ""
        try:
            await engine.wait_until(lambda: holds(engine, "s"), timeout=20)
            proc.send_signal(signal.SIGTERM)
            # The second signal only once the first was taken: sent together, both are pending
            # at once and Linux delivers the lower-numbered SIGINT first.
            seen = await read_until(proc, "SIGTERM received; draining")
            assert engine.heartbeats[-1].leases == [LeaseRef(work_item_id="s", fence=1)]
            proc.send_signal(signal.SIGINT)
        finally:
            status, err = await finish(proc, timeout=5)
            err = seen + err
    assert status == 128 + signal.SIGINT, err
    assert err.rstrip().endswith("tether worker: exiting without draining")
    assert engine.outcome("s") is None
    assert "Traceback" not in err


async def test_unreachable_engine_exits_1_with_one_line_within_the_timeout() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    started = anyio.current_time()
    proc = start_worker(*worker_args(endpoint, "--connect-timeout", "0.5"))
    status, err = await finish(proc)
    assert status == 1
    assert err.splitlines() == [f"tether worker: cannot reach the engine at {endpoint} after 0.5s"]
    assert anyio.current_time() - started < 10  # 0.5 s plus interpreter start-up


@pytest.mark.parametrize(
    ("module", "says"),
    [
        ("worker_no_such_module", "cannot import module 'worker_no_such_module': no such module"),
        ("worker_no_tools", "module 'worker_no_tools' defines no @tool functions"),
    ],
)
async def test_a_bad_module_exits_2_with_one_line(module: str, says: str) -> None:
    proc = start_worker("--engine", "tcp://127.0.0.1:1", "--modules", f"worker_cli_tools,{module}")
    status, err = await finish(proc)
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"tether worker: {says}"), err
