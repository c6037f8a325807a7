"""Secret references on a real ``tether worker`` (I14: secrets are never sent to a peer that
does not need them): the engine holds no value and sends the reference in the Grant; the
worker resolves it from its own environment, and its Result comes back scrubbed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tether import ExecutionFailedError, Runtime
from tether.fleet import broker
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text
from tether.runtime.records import NodeFailed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))  # secret_tools
from secret_tools import REF, SECRET, TOOLS, WORKFLOW, digest  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DEADLINE = 30.0


async def test_a_worker_resolves_the_secret_from_its_own_env_and_nothing_carries_it_I14(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TETHER_SECRET_PROVIDER_KEY", raising=False)  # the engine has none
    caplog.set_level(logging.DEBUG, logger="tether")
    frames: list[bytes] = []  # every frame the engine sent or received

    def spy(fn: Callable[..., bytes]) -> Callable[..., bytes]:
        def wrapped(msg: object) -> bytes:
            frame = fn(msg)
            frames.append(bytes(frame))
            return frame

        return wrapped

    def spy_in(fn: Callable[[bytes], object]) -> Callable[[bytes], object]:
        def wrapped(frame: bytes) -> object:
            frames.append(bytes(frame))
            return fn(frame)

        return wrapped

    monkeypatch.setattr(broker, "encode", spy(broker.encode))
    monkeypatch.setattr(broker, "decode_worker_message", spy_in(broker.decode_worker_message))

    fleet = ZmqFleet("tcp://127.0.0.1:0")
    err = tmp_path / "worker.err"
    env = {**os.environ, "TETHER_SECRET_PROVIDER_KEY": SECRET}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "runtime"), str(ROOT)])
    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    async with Runtime(url, tools=TOOLS, transports=[fleet], max_concurrency=0) as rt:
        argv = [
            sys.executable, "-m", "tether.cli", "worker", "--engine", fleet.endpoint,
            "--modules", "secret_tools", "--connect-timeout", str(DEADLINE),
        ]  # fmt: skip
        with err.open("wb") as stderr:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            run = await rt.start(rt.register(compile_yaml_text(WORKFLOW, "s.yaml")), {})
            with anyio.fail_after(DEADLINE), pytest.raises(ExecutionFailedError):
                await run.result()
            state = await rt.state(run.id)
            journal = await rt.journal(run.id)
        finally:
            proc.kill()
            proc.wait(timeout=DEADLINE)
    assert state.data["digest"] == digest(SECRET)  # the worker's tool had the real key
    [failure] = [e.record for e in journal if isinstance(e.record, NodeFailed)]
    assert failure.error == f"PermissionError: provider refused key '{REF}' (key={REF})"
    grants = [f for f in frames if b"grant" in f and b"api_key" in f]
    assert len(grants) == 2 and all(REF.encode() in g for g in grants)
    assert not [f for f in frames if SECRET.encode() in f]
    assert SECRET not in repr([e.record for e in journal])
    db = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("runtime.db"))
    assert SECRET.encode() not in db
    assert SECRET not in caplog.text and SECRET not in err.read_text()
