"""Child process for the engine SIGKILL test: an engine whose every node runs on remote workers.

python crash_engine_child.py DB PORT N [MS]

Opens a Runtime on the SQLite file DB (resuming whatever an earlier, killed engine left
unfinished) with its fleet broker on tcp://127.0.0.1:PORT and no in-process workers, then starts
``run-0000`` .. ``run-{N-1}`` of the crash-chain workflow (each step sleeps MS milliseconds,
default 40). The ids are deterministic, so a restarted engine re-issues the same starts and each
is a no-op. Prints, one line each, flushed:

    listening tcp://127.0.0.1:PORT      the broker is bound
    started N                           every start is durable
    done run-0007 completed             as each execution ends, in the order they end
    all done N                          then exits 0 (1 if any did not complete)
"""

from __future__ import annotations

import sys

import anyio
from crash_tools import CHAIN_YAML, hold_first, step, throttled_twice

from tether import Runtime
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text

TTL_MS = 1_500
HEARTBEAT_MS = 250


def execution_ids(n: int) -> list[str]:
    return [f"run-{i:04d}" for i in range(n)]


def say(line: str) -> None:
    print(line, flush=True)


async def main(db: str, port: int, n: int, ms: int) -> int:
    fleet = ZmqFleet(f"tcp://127.0.0.1:{port}", heartbeat_interval_ms=HEARTBEAT_MS)
    async with Runtime(
        f"sqlite:///{db}",
        tools=[hold_first, throttled_twice, step],
        transports=[fleet],
        max_concurrency=0,
        lease_ttl_ms=TTL_MS,
    ) as rt:
        say(f"listening {fleet.endpoint}")
        wf = rt.register(compile_yaml_text(CHAIN_YAML, "crash-chain.yaml"))
        ids = execution_ids(n)
        for eid in ids:
            await rt.start(wf, {"eid": eid, "ms": ms}, execution_id=eid)
        say(f"started {n}")
        failed: list[str] = []

        async def wait_for(eid: str) -> None:
            state = await rt.wait(eid)
            if state.status != "completed":
                failed.append(eid)
            say(f"done {eid} {state.status}")

        async with anyio.create_task_group() as tg:
            for eid in ids:
                tg.start_soon(wait_for, eid)
        say(f"all done {n}")
        return 1 if failed else 0


if __name__ == "__main__":
    ms = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    sys.exit(anyio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), ms))
