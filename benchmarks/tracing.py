"""What traces cost per step: the chain benchmark with tracing off and on, in the same rounds.

    python -m benchmarks.tracing [--runs 500] [--in-flight 1,50] [--rounds 3]

Off is the runtime as it ships (no follower: the store is the writer's own). On, the
journal follower (tether.telemetry.follower) makes the spans of every committed turn (an
execution span, a node span and an execute_tool span per step) and hands them to the SDK's
batch processor; its exporter here drops them (counting), so the figure is what Tether and
the SDK spend, not a collector's network. Off and on alternate within each round, each on a
fresh SQLite file; medians of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.chain import chain_workflow, cpu_meter, noop
from benchmarks.machine import banner, describe
from tether import Runtime
from tether.runtime.internals import runtime_internals
from tether.telemetry.follower import start_tracing


class CountingExporter(SpanExporter):
    """Drops spans, counting them (the cost of a collector's network is not Tether's)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


async def measure(db: Path, runs: int, in_flight: int, traced: bool) -> dict[str, Any]:
    length = 10
    latencies: list[float] = []
    exporter = CountingExporter()
    async with (
        Runtime(f"sqlite:///{db}", tools=[noop], max_concurrency=max(64, in_flight)) as rt,
        anyio.create_task_group() as tg,
    ):
        wf = rt.register(chain_workflow(length))
        await runtime_internals(rt).persist(wf)
        tracing = await start_tracing(rt, BatchSpanProcessor(exporter), tg) if traced else None
        remaining = runs

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                await (await rt.start(wf, {})).result()
                latencies.append(time.perf_counter() - t0)

        with cpu_meter() as cpu:
            async with anyio.create_task_group() as inner:
                for _ in range(in_flight):
                    inner.start_soon(worker)
            if tracing is not None:
                await tracing.aclose()  # every span made and exported: counted in
    steps = runs * length
    if traced:
        assert exporter.spans == runs * (1 + 2 * length), exporter.spans
    return {
        "steps_per_s": steps / cpu["wall"],
        "run_p50_ms": statistics.median(latencies) * 1000,
        "cpu_main_us": cpu["thread"] / steps * 1e6,
        "cpu_proc_us": cpu["process"] / steps * 1e6,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--in-flight", default="1,50")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    machine = describe()
    print(f"tracing: 10-node chains, off vs on, median of {args.rounds} rounds · {banner(machine)}")
    results = []
    for level in [int(x) for x in args.in_flight.split(",")]:
        rounds: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for traced in (False, True):
                with tempfile.TemporaryDirectory() as tmp:
                    db = Path(tmp) / "chain.db"
                    rounds[traced].append(anyio.run(measure, db, args.runs, level, traced))
        row: dict[str, Any] = {"in_flight": level, "runs": args.runs}
        for traced, name in ((False, "off"), (True, "on")):
            for key in ("steps_per_s", "run_p50_ms", "cpu_main_us", "cpu_proc_us"):
                row[f"{name}_{key}"] = statistics.median(r[key] for r in rounds[traced])
        row["cost_proc_us"] = row["on_cpu_proc_us"] - row["off_cpu_proc_us"]
        row["cost_main_us"] = row["on_cpu_main_us"] - row["off_cpu_main_us"]
        results.append(row)
        print(
            f"  in_flight={level:3d}  off {row['off_steps_per_s']:7.0f} steps/s"
            f"  on {row['on_steps_per_s']:7.0f} steps/s"
            f"  ({row['on_steps_per_s'] / row['off_steps_per_s']:.2f})"
            f"  | cpu per step: event loop {row['off_cpu_main_us']:5.1f} -> "
            f"{row['on_cpu_main_us']:5.1f} us, process {row['off_cpu_proc_us']:5.1f} -> "
            f"{row['on_cpu_proc_us']:5.1f} us  (tracing: +{row['cost_proc_us']:.1f} us)"
        )
    return {"scenario": "tracing", "machine": machine, "results": results}


if __name__ == "__main__":
    main()
