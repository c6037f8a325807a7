"""Durable steps per second: 10-node chains of trivial tool steps through the embedded runtime.

    python -m benchmarks.chain [--runs 1000] [--in-flight 1,50,500] [--durability full] [--lean]

Each configuration runs on a fresh SQLite file. A step is one work node: two journal records
(node_scheduled, then node_completed in the turn that schedules the next node), plus two per
run (execution_started, execution_completed). Prints steps/s, per-run p50 latency, CPU per step
(the event loop's thread and the whole process: figures that survive a noisy machine better
than throughput), and, in the same invocation, the bare group-commit limit
(benchmarks.limits_group_commit) for the ratio. ``--lean`` runs the lean reference
(../shared/bench/lean_reference: the same durable work at its leanest) in the same rounds, so
the gap to the floor is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
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

        with cpu_meter() as cpu:
            async with anyio.create_task_group() as tg:
                for _ in range(in_flight):
                    tg.start_soon(worker)
    steps = runs * length
    return {
        "in_flight": in_flight,
        "runs": runs,
        "steps": steps,
        "seconds": cpu["wall"],
        "steps_per_s": steps / cpu["wall"],
        "run_p50_ms": statistics.median(latencies) * 1000,
        "cpu_main_us": cpu["thread"] / steps * 1e6,
        "cpu_proc_us": cpu["process"] / steps * 1e6,
        "gc_us": cpu["gc"] / steps * 1e6,
    }


@contextmanager
def cpu_meter() -> Iterator[dict[str, float]]:
    """Wall time, this thread's CPU (the event loop's), the process's CPU (the SQLite writer
    thread included) and the time spent in garbage collection, over the block."""
    out = {"wall": 0.0, "thread": 0.0, "process": 0.0, "gc": 0.0}
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.thread_time()
        else:
            out["gc"] += time.thread_time() - gc_started[0]

    gc.callbacks.append(on_gc)
    t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - t0
        out["thread"] = time.thread_time() - c0
        out["process"] = time.process_time() - p0
        gc.callbacks.remove(on_gc)


#: Where the lean reference lives, beside the project (see its README).
LEAN_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "lean_reference"


def load_lean(where: Path = LEAN_REFERENCE) -> ModuleType | None:
    """The lean reference's module, or None when it is not beside the project."""
    if not (where / "lean.py").exists():
        return None
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))
    return importlib.import_module("lean")


def measure_lean(lean: ModuleType, db: Path, runs: int, in_flight: int) -> dict[str, Any]:
    """The lean reference's chain (tool inline, a future per turn, a writer thread), checked."""
    lean.setup_db(db)
    r: dict[str, Any] = asyncio.run(lean.measure(db, runs, in_flight))
    lean.verify(db, runs)
    return r


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
    parser.add_argument(
        "--lean", action="store_true", help="run the lean reference in the same rounds (full only)"
    )
    parser.add_argument(
        "--code-first", action="store_true",
        help="the same chain as a code-first workflow, in the same rounds",
    )  # fmt: skip
    args = parser.parse_args(argv)
    lean = load_lean() if args.lean else None
    if args.lean and lean is None:
        parser.error(f"--lean: no lean reference at {LEAN_REFERENCE}")
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
        with_lean = lean if durability == "full" else None
        for r in run_all(
            levels, args.runs, cast(Durability, durability), args.rounds, with_lean,
            args.code_first,
        ):  # fmt: skip
            r["durability"] = durability
            results.append(r)
            print(
                f"  in_flight={r['in_flight']:4d} runs={r['runs']:5d}"
                f"  tether {r['steps_per_s']:8.0f} steps/s (spread {r['spread']:5.0f})"
                f"  run p50 {r['run_p50_ms']:7.1f} ms"
                f"  | bare group commit {r['bare_steps_per_s']:8.0f} steps/s"
                f"  | ratio {r['ratio']:.2f}"
            )
            print(
                f"      cpu per step: event loop {r['cpu_main_us']:5.1f} us,"
                f" process {r['cpu_proc_us']:5.1f} us, gc {r['gc_us']:4.1f} us"
            )
            if "lean_ratio" in r:
                print(
                    f"      lean reference {r['lean_steps_per_s']:8.0f} steps/s"
                    f"  ratio {r['lean_ratio']:.2f}  event loop {r['lean_cpu_main_us']:5.1f} us"
                    f"  | tether's step costs {r['cpu_main_us'] / r['lean_cpu_main_us']:.1f}x"
                    " the floor's event-loop CPU"
                )
            if "code_steps_per_s" in r:
                print(
                    f"      code-first {r['code_steps_per_s']:8.0f} steps/s"
                    f"  {r['code_steps_per_s'] / r['steps_per_s']:.2f} of the graph chain"
                    f"  ratio {r['code_steps_per_s'] / r['bare_steps_per_s']:.2f}"
                    f"  event loop {r['code_cpu_main_us']:5.1f} us  (aim: within 20% of the graph)"
                )
    return {"scenario": "chain", "machine": machine, "results": results}


def run_all(
    levels: list[int],
    runs: int,
    durability: Durability,
    rounds: int,
    lean: ModuleType | None = None,
    code_first: bool = False,
) -> list[dict[str, Any]]:
    """For each level: Tether's chain and, in the same rounds, the bare aiosqlite loop that
    appends the same records (2 per step) through one group-committing writer (and the lean
    reference, when given)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in levels:
            n = runs if k > 1 else max(10, runs // 10)
            ours: list[dict[str, Any]] = []
            bare: list[float] = []
            leans: list[dict[str, Any]] = []
            codes: list[dict[str, Any]] = []
            for i in range(rounds):
                ours.append(
                    anyio.run(measure_chain, Path(tmp) / f"chain-{k}-{i}.db", n, k, durability)
                )
                sync = "FULL" if durability == "full" else "NORMAL"
                steps_per_s, _ = asyncio.run(
                    bare_loop(Path(tmp) / f"bare-{k}-{i}.db", n * 10, k, sync)
                )
                bare.append(steps_per_s)
                if lean is not None:
                    leans.append(measure_lean(lean, Path(tmp) / f"lean-{k}-{i}.db", n, k))
                if code_first:
                    from benchmarks.code_first import measure_code_chain

                    db = Path(tmp) / f"code-{k}-{i}.db"
                    codes.append(anyio.run(measure_code_chain, db, n, k, durability))
            summary = _summary(k, n, ours, bare, leans)
            if codes:
                summary["code_steps_per_s"] = statistics.median(c["steps_per_s"] for c in codes)
                summary["code_cpu_main_us"] = statistics.median(c["cpu_main_us"] for c in codes)
            out.append(summary)
    return out


def _summary(
    in_flight: int,
    runs: int,
    ours: list[dict[str, Any]],
    bare: list[float],
    leans: list[dict[str, Any]],
) -> dict[str, Any]:
    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    speeds = [r["steps_per_s"] for r in ours]
    bare_med = statistics.median(bare)
    summary = {
        "in_flight": in_flight,
        "runs": runs,
        "steps_per_s": med(ours, "steps_per_s"),
        "spread": max(speeds) - min(speeds),
        "run_p50_ms": med(ours, "run_p50_ms"),
        "cpu_main_us": med(ours, "cpu_main_us"),
        "cpu_proc_us": med(ours, "cpu_proc_us"),
        "gc_us": med(ours, "gc_us"),
        "bare_steps_per_s": bare_med,
        "bare_spread": max(bare) - min(bare),
        "ratio": med(ours, "steps_per_s") / bare_med,
    }
    if leans:
        summary["lean_steps_per_s"] = med(leans, "steps_per_s")
        summary["lean_ratio"] = summary["lean_steps_per_s"] / bare_med
        summary["lean_cpu_main_us"] = med(leans, "cpu_main_us")
    return summary


if __name__ == "__main__":
    main()
