"""The worker port with CURVE keys (I14): real ``tether worker`` processes against a keyed
engine. A worker without a key, or with a key the engine does not list, never joins and never
sees a step's input; a worker with a listed key runs the steps. A worker id is bound to the key
that registered it, and one key registers a bounded number of workers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from big_tools import work
from test_fleet_worker_cli import finish

from tether import Runtime
from tether.fleet import (
    EngineConnection,
    EngineKeys,
    HandshakeRefused,
    InsecureEndpoint,
    KeyFileError,
    WorkerKeys,
)
from tether.fleet.keys import beyond_loopback, generate
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

WF = """
workflow: {id: keyed, version: "1", start: step, state_schema: {n: {type: integer}}}
nodes:
  step: {type: tool, tool: work, input: {n: $n}, output_key: n, next: end}
"""


class Keys:
    """An engine key pair, one listed worker ("good") and one unlisted ("stranger")."""

    def __init__(self, root: Path) -> None:
        _, self.engine_secret = generate(root, "engine")
        self.engine_public = root / "engine.key"
        self.workers = root / "workers"
        _, self.good = generate(self.workers, "good")
        _, self.good2 = generate(self.workers, "good2")
        _, self.stranger = generate(root / "elsewhere", "stranger")
        self.engine = EngineKeys.from_files(self.engine_secret, self.workers)

    def worker(self, secret: Path) -> WorkerKeys:
        return WorkerKeys.from_files(secret, self.engine_public)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "keys")


@asynccontextmanager
async def keyed_engine(db: Path, keys: Keys, **limits: int) -> AsyncIterator[tuple[Runtime, str]]:
    fleet = ZmqFleet("tcp://127.0.0.1:0", keys=keys.engine, heartbeat_interval_ms=100, **limits)
    async with Runtime(
        f"sqlite:///{db}", tools=[work], transports=[fleet], max_concurrency=0
    ) as rt:
        yield rt, fleet.endpoint


def tether_worker(endpoint: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("TETHER_WORKER_KEY", None)
    env.pop("TETHER_ENGINE_KEY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "worker", "--engine", endpoint,
         "--modules", "big_tools", "--worker-id", "w", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


async def test_a_worker_without_a_key_never_joins_nor_sees_a_step_I14(
    tmp_path: Path, keys: Keys
) -> None:
    async with keyed_engine(tmp_path / "e.db", keys) as (rt, endpoint):
        run = await rt.start(rt.register(compile_yaml_text(WF, "wf.yaml")), {"n": 1})
        proc = tether_worker(endpoint, "--connect-timeout", "1")
        status, err = await finish(proc, timeout=30)
        assert status == 1, err
        assert "cannot reach the engine" in err and "Traceback" not in err
        assert rt.workers() == []
        assert "node_completed" not in [e.type for e in await rt.journal(run.id)]


async def test_a_worker_with_an_unlisted_key_is_refused_at_once_I14(
    tmp_path: Path, keys: Keys
) -> None:
    async with keyed_engine(tmp_path / "e.db", keys) as (rt, endpoint):
        run = await rt.start(rt.register(compile_yaml_text(WF, "wf.yaml")), {"n": 1})
        # A long connect timeout: the refusal comes from the failed handshake, not the wait.
        proc = tether_worker(
            endpoint, "--key", str(keys.stranger), "--engine-key", str(keys.engine_public),
            "--connect-timeout", "600",
        )  # fmt: skip
        status, err = await finish(proc, timeout=30)
        assert status == 1, err
        assert "refused this worker's key" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert rt.workers() == []
        assert "node_completed" not in [e.type for e in await rt.journal(run.id)]


async def test_a_worker_with_a_listed_key_runs_the_steps_I14(tmp_path: Path, keys: Keys) -> None:
    async with keyed_engine(tmp_path / "e.db", keys) as (rt, endpoint):
        wf = rt.register(compile_yaml_text(WF, "wf.yaml"))
        runs = [await rt.start(wf, {"n": i}) for i in range(5)]
        proc = tether_worker(endpoint, "--key", str(keys.good),
                             "--engine-key", str(keys.engine_public))  # fmt: skip
        try:
            assert [await r.result(timeout=30) for r in runs] == [{"n": i} for i in range(5)]
        finally:
            proc.terminate()
            status, err = await finish(proc, timeout=30)
        assert status == 0, err


async def test_another_key_cannot_take_a_live_worker_id_I14(tmp_path: Path, keys: Keys) -> None:
    async with (
        keyed_engine(tmp_path / "e.db", keys) as (_, endpoint),
        EngineConnection(endpoint, worker_id="good-4", queues=["python_tool"], capacity=1,
                         tools=["work"], keys=keys.worker(keys.good)),
    ):  # fmt: skip
        with pytest.raises(HandshakeRefused) as refused:
            async with EngineConnection(endpoint, worker_id="good-4", queues=["python_tool"],
                                        capacity=1, tools=["work"],
                                        keys=keys.worker(keys.good2)):  # fmt: skip
                pass
        assert refused.value.code == "worker_id"
        assert "live on another connection" in str(refused.value)


async def test_one_key_registers_a_bounded_number_of_workers_I14(
    tmp_path: Path, keys: Keys
) -> None:
    async with keyed_engine(tmp_path / "e.db", keys, max_workers_per_principal=3) as (_, ep):
        conns = [
            EngineConnection(ep, worker_id=f"w{i}", queues=["python_tool"], capacity=1,
                             tools=["work"], keys=keys.worker(keys.good))
            for i in range(4)
        ]  # fmt: skip
        for conn in conns[:3]:
            await conn.__aenter__()
        try:
            with pytest.raises(HandshakeRefused) as refused:
                await conns[3].__aenter__()
            assert refused.value.code == "worker_limit"
            # Another key is counted on its own.
            async with EngineConnection(ep, worker_id="other", queues=["python_tool"],
                                        capacity=1, tools=["work"],
                                        keys=keys.worker(keys.good2)):  # fmt: skip
                pass
        finally:
            for conn in conns[:3]:
                await conn.__aexit__(None, None, None)


def test_the_port_refuses_to_listen_beyond_loopback_without_keys_I14(keys: Keys) -> None:
    for endpoint in ("tcp://0.0.0.0:7701", "tcp://*:7701", "tcp://10.1.2.3:7701"):
        assert beyond_loopback(endpoint)
        with pytest.raises(InsecureEndpoint):
            ZmqFleet(endpoint)
    ZmqFleet("tcp://0.0.0.0:7701", keys=keys.engine)  # with keys: fine
    for endpoint in ("tcp://127.0.0.1:7701", "tcp://localhost:0", "tcp://[::1]:1", "ipc:///x"):
        assert not beyond_loopback(endpoint)


def test_tether_dev_refuses_an_open_worker_port_without_keys_in_one_line_I14(
    tmp_path: Path, keys: Keys
) -> None:
    env = {**os.environ, "TETHER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
           "TETHER_TOKEN": "s3cret-s3cret-s3cret", "TETHER_BIND": "0.0.0.0"}  # fmt: skip
    for name in ("TETHER_FLEET_KEY", "TETHER_FLEET_WORKER_KEYS"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "tether.cli", "dev"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "TETHER_FLEET_KEY" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_key_files_are_checked_with_a_clear_error(tmp_path: Path, keys: Keys) -> None:
    with pytest.raises(KeyFileError, match="no secret key"):
        EngineKeys.from_files(keys.engine_public, keys.workers)
    with pytest.raises(KeyFileError, match="holds no public key"):
        EngineKeys.from_files(keys.engine_secret, tmp_path)
    with pytest.raises(KeyFileError, match="does not exist"):
        EngineKeys.from_files(keys.engine_secret, tmp_path / "nope")
    assert "secret" not in repr(keys.engine).lower()
    assert oct(keys.good.stat().st_mode & 0o777) == "0o600"
