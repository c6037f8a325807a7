"""Code-first workflows measured: the chain of ``chain`` written as a function, and the first
replay of a long code-first journal.

    python -m benchmarks chain --code-first         # beside the graph chain and the bare loop
    python -m benchmarks.code_first --replay-steps 10000

The first replay is what a restarted engine pays for a run that had done N steps: decoding
and folding its journal, then running its body from the top with every call answered from
the folded state (no step runs). Printed as milliseconds, not asserted anywhere.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.chain import cpu_meter
from tether import Runtime, WorkflowContext, step, workflow
from tether.persistence.contract import Durability
from tether.runtime.code_first.calls import CodeDriver
from tether.runtime.code_first.graph import CodeGraph
from tether.runtime.internals import runtime_internals
from tether.runtime.records import decode_rows
from tether.runtime.snapshots import load_state
from tether.runtime.state import ExecutionState, replay


@step
async def noop_step(i: int) -> int:
    return i


@workflow(id="chain_code", version="1")
async def chain_code(ctx: WorkflowContext) -> int:
    """The graph chain's ten tool steps, as calls."""
    total = 0
    for i in range(10):
        total += await noop_step(i)
    return total


@workflow(id="long_code", version="1")
async def long_code(ctx: WorkflowContext, data: dict[str, Any]) -> int:
    total = 0
    for i in range(data["steps"]):
        total += await noop_step(i)
    await ctx.approval("end")  # left pending: the run is still going when it is replayed
    return total


async def measure_code_chain(
    db: Path, runs: int, in_flight: int, durability: Durability
) -> dict[str, Any]:
    """Like ``chain.measure_chain``, for the code-first chain."""
    latencies: list[float] = []
    async with Runtime(
        f"sqlite:///{db}", workflows=[chain_code], durability=durability,
        max_concurrency=max(64, in_flight),
    ) as rt:  # fmt: skip
        remaining = runs

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                await (await rt.start(chain_code, {})).result()
                latencies.append(time.perf_counter() - t0)

        with cpu_meter() as cpu:
            async with anyio.create_task_group() as tg:
                for _ in range(in_flight):
                    tg.start_soon(worker)
    steps = runs * 10
    return {
        "steps_per_s": steps / cpu["wall"],
        "run_p50_ms": statistics.median(latencies) * 1000,
        "cpu_main_us": cpu["thread"] / steps * 1e6,
    }


async def first_replay(db: Path, steps: int) -> dict[str, float]:
    """Run ``steps`` calls, then time decoding, folding and replaying the body once."""
    async with Runtime(f"sqlite:///{db}", workflows=[long_code], passivate_after=None) as rt:
        run = await rt.start(long_code, {"steps": steps})
        while (await rt.get_execution(run.id)).status != "paused":
            await anyio.sleep(0.01)  # the run's own pace: a benchmark, not a test
        internals = runtime_internals(rt)
        rows = await rt.store.read(run.id)
        graph = await internals.graph("long_code", "1")
        assert isinstance(graph, CodeGraph)
        t0 = time.perf_counter()
        entries = decode_rows(rows)
        t1 = time.perf_counter()
        state = replay(graph, [e.record for e in entries])
        t2 = time.perf_counter()
        body_ms = _replay_body(graph, state)
        t3 = time.perf_counter()
        # What a restarted engine does: the latest snapshot and the records after it.
        recovered, _ = await load_state(internals.services, run.id)
        t4 = time.perf_counter()
        recovery_body_ms = _replay_body(graph, recovered)
        assert recovered == state
    return {
        "records": len(rows),
        "decode_ms": (t1 - t0) * 1000,
        "fold_ms": (t2 - t1) * 1000,
        "body_ms": body_ms,
        "total_ms": (t2 - t0) * 1000 + body_ms,
        "snapshot_load_ms": (t4 - t3) * 1000,
        "recovery_ms": (t4 - t3) * 1000 + recovery_body_ms,
    }


def _replay_body(graph: CodeGraph, state: ExecutionState) -> float:
    t0 = time.perf_counter()
    new = CodeDriver(graph.code, state, graph.ensure_step).advance(state, 0, random.Random(0))
    assert new == [], new  # every call was answered from the state: nothing ran
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="first replay of a long code-first journal")
    parser.add_argument("--replay-steps", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        r = anyio.run(first_replay, Path(tmp) / "long.db", args.replay_steps)
    print(
        f"code-first first replay of {args.replay_steps} steps ({r['records']} records):"
        f" from the whole journal {r['total_ms']:.0f} ms (decode {r['decode_ms']:.0f},"
        f" fold {r['fold_ms']:.0f}, body {r['body_ms']:.0f}); as recovery does it (latest"
        f" snapshot, the records after it, the body) {r['recovery_ms']:.0f} ms | aim: 100 ms"
    )
    return {"scenario": "code_first_replay", "steps": args.replay_steps, **r}


if __name__ == "__main__":
    main()
