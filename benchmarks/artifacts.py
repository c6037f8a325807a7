"""Large step results with and without the artifact store, in the same invocation.

    python -m benchmarks.artifacts [--runs 200] [--value-bytes 65536] [--in-flight 1,50]

The chain of benchmarks.chain (10 tool steps per run), each step returning a distinct string
of ``--value-bytes``; once with the default threshold (8 KiB: the journal holds references,
each value stored once as an artifact) and once with ``artifact_threshold=None`` (every value
inline in every row that carries it: what Tether did before artifacts), alternating, median of
``--rounds``. Prints steps/s and what the database holds per step: journal and snapshot
payloads, artifact bytes, and the file itself after a checkpoint.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import tempfile
from pathlib import Path
from typing import Any

import anyio

from benchmarks.chain import chain_workflow, cpu_meter
from benchmarks.machine import banner, describe
from tether import Runtime, tool
from tether.persistence.artifacts.front import DEFAULT_ARTIFACT_THRESHOLD
from tether.runtime.internals import runtime_internals
from tether.runtime.tools import Tool


def sized_noop(size: int) -> Tool:
    """The chain's ``noop`` tool, returning a distinct ``size``-character string per call."""
    made = itertools.count()

    async def noop(i: int) -> str:
        head = f"{next(made):012d}"
        return head + "x" * max(0, size - len(head))

    return tool(noop)


async def measure(
    db: Path, runs: int, in_flight: int, size: int, threshold: int | None
) -> dict[str, Any]:
    async with Runtime(
        f"sqlite:///{db}", tools=[sized_noop(size)], max_concurrency=max(64, in_flight),
        artifact_threshold=threshold,
    ) as rt:  # fmt: skip
        wf = rt.register(chain_workflow())
        await runtime_internals(rt).persist(wf)
        remaining = runs

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await (await rt.start(wf, {})).result()

        with cpu_meter() as cpu:
            async with anyio.create_task_group() as tg:
                for _ in range(in_flight):
                    tg.start_soon(worker)
    steps = runs * 10
    with sqlite3.connect(db) as conn:
        [(journal,)] = conn.execute("SELECT coalesce(sum(length(payload)), 0) FROM journal")
        [(snaps,)] = conn.execute("SELECT coalesce(sum(length(payload)), 0) FROM snapshots")
        [(blobs,)] = conn.execute("SELECT coalesce(sum(size), 0) FROM artifacts")
    return {
        "steps_per_s": steps / cpu["wall"],
        "cpu_main_us": cpu["thread"] / steps * 1e6,
        "journal_kb_per_step": journal / steps / 1024,
        "snapshot_kb_per_step": snaps / steps / 1024,
        "artifact_kb_per_step": blobs / steps / 1024,
        "file_kb_per_step": db.stat().st_size / steps / 1024,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="chains per configuration")
    parser.add_argument("--value-bytes", type=int, default=65536, help="each step's result")
    parser.add_argument("--in-flight", default="1,50")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    args = parser.parse_args(argv)
    machine = describe()
    print(
        f"artifacts: 10-node chains, {args.value_bytes}-byte step results, median of "
        f"{args.rounds} rounds · {banner(machine)}"
    )
    results = []
    configs = {"artifacts": DEFAULT_ARTIFACT_THRESHOLD, "inline": None}
    with tempfile.TemporaryDirectory() as tmp:
        for k in (int(x) for x in args.in_flight.split(",")):
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
            for i in range(args.rounds):
                for name, threshold in configs.items():  # alternating: the same noise
                    db = Path(tmp) / f"{name}-{k}-{i}.db"
                    r = anyio.run(measure, db, args.runs, k, args.value_bytes, threshold)
                    rows[name].append(r)
            for name, got in rows.items():
                med = {key: statistics.median(r[key] for r in got) for key in got[0]}
                med.update(config=name, in_flight=k, runs=args.runs, value_bytes=args.value_bytes)
                results.append(med)
                print(
                    f"  in_flight={k:3d} {name:9s} {med['steps_per_s']:7.0f} steps/s"
                    f"  event loop {med['cpu_main_us']:6.1f} us/step"
                    f"  | per step: journal {med['journal_kb_per_step']:7.1f} KiB,"
                    f" snapshots {med['snapshot_kb_per_step']:5.1f} KiB,"
                    f" artifacts {med['artifact_kb_per_step']:6.1f} KiB,"
                    f" file {med['file_kb_per_step']:7.1f} KiB"
                )
    return {"scenario": "artifacts", "machine": machine, "results": results}


if __name__ == "__main__":
    main()
