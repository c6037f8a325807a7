"""What the audit log costs the durable step: chain steps/s with it off, on, and on with a
signer following the journal, in one invocation.

    python -m benchmarks.audit [--runs 300] [--in-flight 1,50] [--rounds 3] [--turns 20000]

Each round runs every configuration once, in turn, each on a fresh SQLite file, so drift on a
noisy machine hits all of them alike; the median round is printed. "on" chains every journal
row (a SHA-256 per row, computed by the writer as it accepts a turn); "signed" also runs a
HeadSigner signing the heads that moved every ``--sign-every`` seconds (default 0.1: ten times
``tether dev``'s pace, to show the signer's cost rather than hide it).

A second table isolates the writer: 2-record turns of 200 executions appended straight to the
store, audit off and on alternating over many short rounds, the event loop's CPU per turn
taken at each configuration's best round (the least disturbed by other processes): on a
loaded machine wall-clock steps/s swing more than the audit log costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.chain import chain_workflow, cpu_meter, noop
from benchmarks.machine import banner, describe
from tether import Runtime
from tether.governance import HeadSigner, init_keys
from tether.persistence import NewRecord, SqliteStore, Turn
from tether.runtime.internals import runtime_internals

CONFIGS = ("off", "on", "signed")


async def measure(
    db: Path, config: str, runs: int, in_flight: int, sign_every: float = 0.1
) -> dict[str, Any]:
    store = SqliteStore(db, audit=config != "off")
    await store.open()
    signer = None
    if config == "signed":
        key = init_keys(db.parent / "keys")
        signer = HeadSigner(store.audit_log(), key, lambda: int(time.time() * 1000), 0.1)
    try:
        async with Runtime(store=store, tools=[noop], max_concurrency=max(64, in_flight)) as rt:
            wf = rt.register(chain_workflow(10))
            await runtime_internals(rt).persist(wf)
            remaining = runs

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    run = await rt.start(wf, {})
                    await run.result()

            with cpu_meter() as cpu:
                async with anyio.create_task_group() as tg:
                    for _ in range(in_flight):
                        tg.start_soon(worker)
                    if signer is not None:
                        done = lambda: remaining <= 0  # noqa: E731 (read at each pass)
                        tg.start_soon(_sign_until_done, signer, done, sign_every)
    finally:
        await store.close()
    steps = runs * 10
    return {
        "steps_per_s": steps / cpu["wall"],
        "cpu_main_us": cpu["thread"] / steps * 1e6,
        "signed": signer.signed if signer is not None else 0,
    }


async def _sign_until_done(signer: HeadSigner, done: Any, every: float) -> None:
    while not done():
        await signer.sign_pending()
        await anyio.sleep(every)
    await signer.sign_pending()


async def writer_cpu(db: Path, audit: bool, turns: int) -> float:
    """Event-loop CPU per turn appending ``turns`` 2-record turns (50 at a time)."""
    payload = b"\x85" + b"x" * 90  # about a node_completed record's size
    async with SqliteStore(db, audit=audit, durability="normal") as store:
        seqs = dict.fromkeys((f"exec_{i:04d}" for i in range(200)), 1)
        eids = list(seqs)
        done = 0
        c0 = time.thread_time()
        while done < turns:
            batch = []
            for eid in eids[done % 200 : done % 200 + 50]:
                seq = seqs[eid]
                records = (
                    NewRecord("node_completed", payload),
                    NewRecord("node_scheduled", payload),
                )
                batch.append(store.append(Turn(eid, seq, records)))
                seqs[eid] = seq + 2
            await asyncio.gather(*batch)
            done += len(batch)
        return (time.thread_time() - c0) / done * 1e6


def writer_table(turns: int, rounds: int) -> dict[str, float]:
    best = {"off": float("inf"), "on": float("inf")}
    for _ in range(rounds):
        for config in best:
            with tempfile.TemporaryDirectory() as tmp:
                us = asyncio.run(writer_cpu(Path(tmp) / "w.db", config == "on", turns))
            best[config] = min(best[config], us)
    extra = best["on"] - best["off"]
    print(f"  writer only: event loop per 2-record turn: off {best['off']:.1f} us, "
          f"on {best['on']:.1f} us ({extra:+.1f} us, {extra / best['off']:+.1%})")  # fmt: skip
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="chains per configuration")
    parser.add_argument("--in-flight", default="1,50")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=20000, help="turns per writer-only round")
    parser.add_argument("--sign-every", type=float, default=0.1, help="signer pace, seconds")
    args = parser.parse_args(argv)
    print(f"audit: 10-node chains, median of {args.rounds} rounds · {banner(describe())}")
    results: dict[str, Any] = {}
    for in_flight in [int(x) for x in args.in_flight.split(",")]:
        rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
        for _ in range(args.rounds):
            for config in CONFIGS:
                with tempfile.TemporaryDirectory() as tmp:
                    db = Path(tmp) / "a.db"
                    r = asyncio.run(measure(db, config, args.runs, in_flight, args.sign_every))
                rounds[config].append(r)
        line = {}
        for config in CONFIGS:
            line[config] = {
                "steps_per_s": statistics.median(r["steps_per_s"] for r in rounds[config]),
                "cpu_main_us": statistics.median(r["cpu_main_us"] for r in rounds[config]),
            }
        off = line["off"]["steps_per_s"]
        cells = []
        for c in CONFIGS:
            cost = "" if c == "off" else f", cost {1 - line[c]['steps_per_s'] / off:+.1%}"
            cells.append(f"{c} {line[c]['steps_per_s']:7.0f} steps/s "
                         f"({line[c]['cpu_main_us']:5.1f} us loop{cost})")  # fmt: skip
        print(f"  in_flight={in_flight:4d}  " + "  ".join(cells))
        results[str(in_flight)] = line
    results["writer"] = writer_table(args.turns, max(args.rounds * 2, 6))
    return results


if __name__ == "__main__":
    main()
