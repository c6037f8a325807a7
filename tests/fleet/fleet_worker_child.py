"""Child process for the SIGKILL test: a worker that heartbeats until killed.

python fleet_worker_child.py ENDPOINT WORKER_ID  -> prints "ready" once welcomed
"""

from __future__ import annotations

import sys

import anyio

from tether.fleet import EngineConnection, Heartbeat


async def main(endpoint: str, worker_id: str) -> None:
    async with EngineConnection(
        endpoint, worker_id=worker_id, queues=["default"], capacity=1, tools=["echo"]
    ) as conn:
        print("ready", flush=True)
        interval = conn.welcome.heartbeat_interval_ms / 1000
        while True:
            await conn.send(Heartbeat())
            await anyio.sleep(interval)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
