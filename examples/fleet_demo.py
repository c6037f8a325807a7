"""The worker fleet in one command: an engine (an embedded Runtime) whose steps run on a
`tether worker` process it starts, over ZeroMQ on loopback.

    python examples/fleet_demo.py

The engine runs no tool itself (max_concurrency=0): every step of examples/counter.yaml goes to
the worker, which says so on stderr as it joins. The journal is a SQLite file in a temporary
folder; the worker is stopped with SIGTERM (it drains) at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tether import Runtime
from tether.fleet import ZmqFleet
from tether.ir import compile_yaml_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tools import add_one  # noqa: E402  (the example's tools, beside this file)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    folder = Path(tempfile.mkdtemp(prefix="tether-fleet-"))
    fleet = ZmqFleet(endpoint)  # loopback: no keys needed (beyond it, see README "Security")
    async with Runtime(
        f"sqlite:///{folder / 'runtime.db'}", tools=[add_one], transports=[fleet],
        max_concurrency=0,
    ) as rt:  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "tether.cli", "worker", "--engine", endpoint,
             "--modules", "tools", "--worker-id", "demo-worker"],
            cwd=HERE, env={**os.environ, "PYTHONPATH": str(HERE)},
        )  # fmt: skip
        try:
            wf = rt.register(compile_yaml_file(HERE / "counter.yaml"))
            run = await rt.start(wf, {"n": 0})
            print("result:", await run.result(timeout=60))
            workers = {e.record.worker_id for e in await rt.journal(run.id)
                       if e.type == "node_completed"}  # fmt: skip
            print("steps run by:", ", ".join(sorted(workers)))
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
