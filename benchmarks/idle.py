"""Idle runs: memory per paused run, approving a passivated run, timers of passivated runs.

    python -m benchmarks idle [--runs 100000] [--long-timers 0.1] [--sample 200]

Starts ``--runs`` runs that pause at a human approval (a ``--long-timers`` share of them wait
for a one-day timer instead) on one embedded Runtime and a fresh SQLite file, and waits until
every one is passivated. Prints the RSS over the base (after the runtime started) per paused
run; the p50/p99 latency of approving a random sample of passivated runs until
``run.result()`` returns, with the garbage collector's pauses meanwhile; and, for a sample of
runs with a short timer (longer than ``--passivate-after``), how late after its due time each
one completed. ``--passivate-after 0`` measures the same with passivation off.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.machine import banner, describe
from tether import Runtime
from tether.ir.types import END, Edge, HumanApprovalKind, Node, WaitKind, Workflow
from tether.runtime.internals import runtime_internals

_CREATORS = 256


def _flow(workflow_id: str, kind: HumanApprovalKind | WaitKind) -> Workflow:
    node = Node(id="pause", kind=kind)
    return Workflow(workflow_id=workflow_id, version="1", start_node="pause",
                    nodes={"pause": node}, edges=[Edge(from_="pause", to=END)])  # fmt: skip


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def live_actors(rt: Runtime) -> int:
    """Execution actors the system holds (its own actors are named ``tether.*``)."""
    assert rt._system is not None
    return sum(1 for name in rt._system._cells if not name.startswith("tether."))


async def start_many(rt: Runtime, flows: list[Workflow], count: int) -> list[str]:
    ids: list[str] = []
    todo = iter(range(count))

    async def creator() -> None:
        for i in todo:
            ids.append((await rt.start(flows[i % len(flows)], {})).id)

    async with anyio.create_task_group() as tg:
        for _ in range(_CREATORS):
            tg.start_soon(creator)
    return ids


async def settle(rt: Runtime, expected_live: int = 0) -> None:
    """Let the actors passivate (no timed wait: each check yields to the loop)."""
    while live_actors(rt) > expected_live:
        await anyio.sleep(0.01)


class GcPauses:
    """Time spent in collections (gc.callbacks), by generation."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t0))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def approvals(rt: Runtime, ids: list[str], sample: int) -> dict[str, Any]:
    """Approve a random sample one after another; each until its ``run.result()``."""
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    latencies = []
    try:
        for eid in random.Random(7).sample(ids, min(sample, len(ids))):
            t0 = time.perf_counter()
            await rt.approve(eid, "approved", "bench@example.com")
            await rt.handle(eid).result()
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        gc.callbacks.remove(pauses)
    full = [s for gen, s in pauses.pauses if gen == 2]
    return {
        "approve_p50_ms": statistics.median(latencies),
        "approve_p99_ms": pct(latencies, 0.99),
        "approve_max_ms": max(latencies),
        "gc_collections": len(pauses.pauses),
        "gc_full_collections": len(full),
        "gc_full_max_ms": max(full, default=0.0) * 1000,
    }


async def timers(rt: Runtime, wf: Workflow, count: int) -> dict[str, Any]:
    """Start ``count`` short-timer runs, let them passivate, and see each complete on time."""
    ids = await start_many(rt, [wf], count)
    rows = [await rt.get_execution(eid) for eid in ids]
    passivated = sum(1 for row in rows if row.passivated)
    late = []
    for eid, row in zip(ids, rows, strict=True):
        state = await rt.wait(eid)
        assert row.wake_at_ms is not None and state.ended_at_ms is not None
        late.append(state.ended_at_ms - row.wake_at_ms)
    return {
        "timer_runs": count,
        "timer_passivated": passivated,
        "timer_late_p50_ms": statistics.median(late),
        "timer_late_max_ms": max(late),
    }


async def measure(db: Path, args: argparse.Namespace) -> dict[str, Any]:
    async with Runtime(
        f"sqlite:///{db}", durability=args.durability, passivate_after=args.passivate_after,
        max_concurrency=4,
    ) as rt:  # fmt: skip
        approval = rt.register(_flow("approve", HumanApprovalKind(description="Pay?")))
        long_timer = rt.register(_flow("long", WaitKind(duration_secs=86_400)))
        short_timer = rt.register(_flow("short", WaitKind(duration_secs=args.short_timer)))
        for wf in (approval, long_timer, short_timer):
            await runtime_internals(rt).persist(wf)
        every = round(1 / args.long_timers) if args.long_timers > 0 else 0
        flows = [long_timer] + [approval] * (every - 1) if every else [approval]
        gc.collect()
        base = rss_bytes()
        t0 = time.perf_counter()
        ids = await start_many(rt, flows, args.runs)
        created_s = time.perf_counter() - t0
        live_expected = args.runs if not args.passivate_after else 0
        await settle(rt, live_expected)
        gc.collect()
        paused = rss_bytes()
        out = {
            "runs": args.runs,
            "passivate_after_s": args.passivate_after,
            "created_per_s": args.runs / created_s,
            "rss_base_mb": base / 2**20,
            "rss_paused_mb": paused / 2**20,
            "rss_per_run_bytes": (paused - base) / args.runs,
            "live_actors": live_actors(rt),
        }
        approvable = [eid for i, eid in enumerate(ids) if not every or i % every]
        out |= await approvals(rt, approvable, args.sample)
        if args.timer_sample:
            out |= await timers(rt, short_timer, args.timer_sample)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--long-timers", type=float, default=0.1, help="share on a 1-day timer")
    parser.add_argument("--sample", type=int, default=200, help="approvals measured")
    parser.add_argument("--timer-sample", type=int, default=50, help="short-timer runs")
    parser.add_argument("--short-timer", type=float, default=3.0, help="seconds")
    parser.add_argument("--passivate-after", type=float, default=1.0, help="seconds; 0: off")
    parser.add_argument("--durability", choices=("full", "normal"), default="normal")
    args = parser.parse_args(argv)
    machine = describe()
    print(f"idle: {args.runs} paused runs on one Runtime · {banner(machine)}")
    with tempfile.TemporaryDirectory() as tmp:
        r = anyio.run(measure, Path(tmp) / "idle.db", args)
    print(
        f"  created {r['runs']} runs at {r['created_per_s']:.0f} runs/s"
        f" (durability={args.durability}, passivate_after={args.passivate_after}s)\n"
        f"  RSS base {r['rss_base_mb']:.0f} MB, paused {r['rss_paused_mb']:.0f} MB:"
        f" {r['rss_per_run_bytes']:.0f} bytes per paused run; live actors {r['live_actors']}\n"
        f"  approve until result(): p50 {r['approve_p50_ms']:.1f} ms,"
        f" p99 {r['approve_p99_ms']:.1f} ms, max {r['approve_max_ms']:.1f} ms"
        f" ({args.sample} runs; {r['gc_collections']} GC collections,"
        f" {r['gc_full_collections']} full, longest {r['gc_full_max_ms']:.1f} ms)"
    )
    if args.timer_sample:
        print(
            f"  {r['timer_runs']} runs on a {args.short_timer}s timer"
            f" ({r['timer_passivated']} passivated): completed p50 {r['timer_late_p50_ms']:.0f} ms,"
            f" max {r['timer_late_max_ms']:.0f} ms after the due time"
        )
    return {"scenario": "idle", "machine": machine, "results": [r]}


if __name__ == "__main__":
    main()
