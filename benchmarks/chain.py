"""Durable steps per second: 10-node chains of trivial tool steps through the embedded runtime.

    python -m benchmarks.chain [--runs 1000] [--in-flight 1,50,500] [--durability full]

Each configuration runs on a fresh SQLite file. A step is one work node: two journal records
(node_scheduled, then node_completed in the turn that schedules the next node), plus two per
run (execution_started, execution_completed). Prints steps/s, per-run p50 latency, and, in the
same invocation, the bare group-commit limit (benchmarks.limits_group_commit) for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import anyio

from benchmarks.limits_group_commit import bare_loop
from benchmarks.machine import banner, describe
from tether import Runtime, tool
from tether.ir.types import END, Edge, Node, ToolKind, Workflow
from tether.persistence.contract import Durability
from tether.runtime.internals import runtime_internals


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
        await runtime_internals(rt).persist(wf)
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


#: What each durability setting gives up (printed with its figures).
DURABILITY_NOTE = {
    "full": "default: a commit survives power loss (synchronous=FULL, WAL)",
    "normal": "faster: survives a process crash, may lose the last commits on power loss",
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="chains per configuration")
    parser.add_argument("--in-flight", default="1,50,500")
    parser.add_argument("--durability", default="full", help="full, normal, or both: full,normal")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    args = parser.parse_args(argv)
    settings = [d.strip() for d in args.durability.split(",")]
    for d in settings:
        if d not in DURABILITY_NOTE:
            parser.error(f"--durability must be full and/or normal, got {d!r}")
    machine = describe()
    print(f"chain: 10-node chains, median of {args.rounds} rounds · {banner(machine)}")
    results = []
    for durability in settings:
        print(f"durability={durability} ({DURABILITY_NOTE[durability]})")
        levels = [int(x) for x in args.in_flight.split(",")]
        for r in run_all(levels, args.runs, cast(Durability, durability), args.rounds):
            r["durability"] = durability
            results.append(r)
            print(
                f"  in_flight={r['in_flight']:4d} runs={r['runs']:5d}"
                f"  tether {r['steps_per_s']:8.0f} steps/s (spread {r['spread']:5.0f})"
                f"  run p50 {r['run_p50_ms']:7.1f} ms"
                f"  | bare group commit {r['bare_steps_per_s']:8.0f} steps/s"
                f"  | ratio {r['ratio']:.2f}"
            )
    return {"scenario": "chain", "machine": machine, "results": results}


def run_all(
    levels: list[int], runs: int, durability: Durability, rounds: int
) -> list[dict[str, Any]]:
    """For each level: Tether's chain and, in the same rounds, the bare aiosqlite loop that
    appends the same records (2 per step) through one group-committing writer."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in levels:
            n = runs if k > 1 else max(10, runs // 10)
            ours, bare, p50 = [], [], []
            for i in range(rounds):
                r = anyio.run(measure_chain, Path(tmp) / f"chain-{k}-{i}.db", n, k, durability)
                ours.append(r["steps_per_s"])
                p50.append(r["run_p50_ms"])
                sync = "FULL" if durability == "full" else "NORMAL"
                steps_per_s, _ = asyncio.run(
                    bare_loop(Path(tmp) / f"bare-{k}-{i}.db", n * 10, k, sync)
                )
                bare.append(steps_per_s)
            med, bare_med = statistics.median(ours), statistics.median(bare)
            out.append(
                {
                    "in_flight": k,
                    "runs": n,
                    "steps_per_s": med,
                    "spread": max(ours) - min(ours),
                    "run_p50_ms": statistics.median(p50),
                    "bare_steps_per_s": bare_med,
                    "bare_spread": max(bare) - min(bare),
                    "ratio": med / bare_med,
                }
            )
    return out


if __name__ == "__main__":
    main()
