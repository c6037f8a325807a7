"""Durable steps per second: 10-node chains of trivial tool steps through the embedded runtime.

    python -m benchmarks.chain [--runs 1000] [--in-flight 1,50,500] [--durability full]

Each configuration runs on a fresh SQLite file. A step is one work node: two journal records
(node_scheduled, then node_completed in the turn that schedules the next node), plus two per
run (execution_started, execution_completed). Prints steps/s, per-run p50 latency, and, in the
same invocation, the bare group-commit limit (benchmarks.limits_group_commit) for the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from tether import Runtime, tool
from tether.ir.types import END, Edge, Node, ToolKind, Workflow
from tether.persistence.contract import Durability


@tool
async def noop(i: int) -> int:
    return i


def chain_workflow(length: int = 10) -> Workflow:
    ids = [f"s{i}" for i in range(length)]
    nodes = {
        node_id: Node(id=node_id, kind=ToolKind(tool_ref="noop"), input={"i": i})
        for i, node_id in enumerate(ids)
    }
    edges = [Edge(from_=a, to=b) for a, b in zip(ids, [*ids[1:], END], strict=True)]
    return Workflow(workflow_id="chain", version="1", start_node=ids[0], nodes=nodes, edges=edges)


async def measure_chain(
    db: Path, runs: int, in_flight: int, durability: Durability, length: int = 10
) -> dict[str, Any]:
    """Run ``runs`` chains keeping ``in_flight`` going at once; steps/s and run latencies."""
    latencies: list[float] = []
    async with Runtime(
        f"sqlite:///{db}", tools=[noop], durability=durability, max_concurrency=max(64, in_flight)
    ) as rt:
        wf = rt.register(chain_workflow(length))
        await rt.persist(wf)
        remaining = runs

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                run = await rt.start(wf, {})
                await run.result()
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(in_flight):
                tg.start_soon(worker)
        elapsed = time.perf_counter() - started
    return {
        "in_flight": in_flight,
        "runs": runs,
        "steps": runs * length,
        "seconds": elapsed,
        "steps_per_s": runs * length / elapsed,
        "run_p50_ms": statistics.median(latencies) * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--in-flight", default="1,50,500")
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.in_flight.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for k in levels:
            runs = args.runs if k > 1 else max(20, args.runs // 10)
            r = anyio.run(measure_chain, Path(tmp) / f"chain-{k}.db", runs, k, args.durability)
            print(
                f"chain in_flight={k:4d} runs={r['runs']:5d}  {r['steps_per_s']:9.0f} steps/s"
                f"  run p50 {r['run_p50_ms']:8.1f} ms"
            )


if __name__ == "__main__":
    main()
