"""Code-first steps on `tether worker` processes: the engine runs none itself; a worker killed
with SIGKILL mid-step loses its lease and another worker runs the step; committed steps are
never run again (I3, I5)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tether import Runtime
from tether.fleet.transport import ZmqFleet
from tether.testing import check_replay

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from kill_flow import killed  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DEADLINE = 30.0


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        proc.wait(timeout=DEADLINE)


def start_worker(
    started: list[subprocess.Popen[bytes]], tmp_path: Path, name: str, endpoint: str,
    block_at: str | None,
) -> subprocess.Popen[bytes]:  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("TETHER_TEST_BLOCK_AT", None)
    if block_at is not None:
        env["TETHER_TEST_BLOCK_AT"] = block_at
    argv = [
        sys.executable, "-m", "tether.cli", "worker", "--engine", endpoint, "--modules",
        "kill_flow", "--worker-id", name, "--concurrency", "2",
        "--connect-timeout", str(DEADLINE),
    ]  # fmt: skip
    with (tmp_path / f"{name}.err").open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
    started.append(proc)
    return proc


async def until_logged(log: Path, *needles: str) -> None:
    with anyio.fail_after(DEADLINE):  # other processes: their log is what there is to watch
        while not all(n in (log.read_text() if log.exists() else "") for n in needles):
            await anyio.sleep(0.01)


async def test_a_killed_workers_step_runs_on_another_worker(
    tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "effects.log"
    fleet = ZmqFleet("tcp://127.0.0.1:0", heartbeat_interval_ms=250)
    async with Runtime(
        f"sqlite:///{tmp_path / 'engine.db'}", workflows=[killed], transports=[fleet],
        max_concurrency=0, lease_ttl_ms=1_500,
    ) as rt:  # fmt: skip
        first = start_worker(workers, tmp_path, "w1", fleet.endpoint, block_at="3")
        run = await rt.start(killed, {"log": str(log)})
        await until_logged(log, f"done 2 {first.pid}", f"start 3 {first.pid}")
        second = start_worker(workers, tmp_path, "w2", fleet.endpoint, block_at=None)
        os.kill(first.pid, signal.SIGKILL)
        assert await run.result(timeout=DEADLINE) == 10
        await check_replay(rt, run.id)
    lines = log.read_text().splitlines()
    done = Counter(line.split()[1] for line in lines if line.startswith("done"))
    assert done == Counter({"1": 1, "2": 1, "3": 1, "4": 1})  # nothing committed ran twice
    assert f"done 3 {second.pid}" in lines  # the lost lease's step ran on the other worker
