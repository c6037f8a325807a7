"""The Postgres store: does group commit pay, and steps/s of the chain against SQLite.

    python -m benchmarks.postgres [--url postgresql://postgres@127.0.0.1:5432/test]
                                  [--appenders 200] [--turns 10] [--runs 300] [--in-flight 1,50]

1. Store level: ``--appenders`` tasks each append ``--turns`` turns of two records (one
   execution each), through ``PostgresStore.append`` with group commit (turns that arrive
   while a commit is in flight share the next) and with one turn per transaction
   (``writer.MAX_BATCH = 1``). Prints turns/s and commits.
2. The runtime: 10-node chains of trivial tool steps (``benchmarks.chain``'s workflow) on
   Postgres and on a SQLite file, durability ``full`` both, with each ``--in-flight`` level.

Each Postgres measurement runs in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from benchmarks.chain import chain_workflow, noop
from tether import Runtime
from tether.persistence import NewRecord, Turn
from tether.persistence.postgres import PostgresStore, writer
from tether.runtime.internals import runtime_internals

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """``url`` pointed at a new schema (search_path), dropped on the way out."""
    name = f"tether_bench_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        option = quote(f"-csearch_path={name}", safe="")
        yield f"{url}{'&' if '?' in url else '?'}options={option}"
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')


async def appends(url: str, appenders: int, turns: int, max_batch: int) -> dict[str, Any]:
    saved, writer.MAX_BATCH = writer.MAX_BATCH, max_batch
    try:
        async with fresh_schema(url) as schema_url, PostgresStore(schema_url) as store:

            async def one(n: int) -> None:
                for k in range(turns):
                    records = (NewRecord("a", b"x" * 60), NewRecord("b", b"y" * 60))
                    await store.append(Turn(f"e{n}", 2 * k + 1, records))

            t0 = time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(appenders)))
            wall = time.perf_counter() - t0
            stats = store.stats
    finally:
        writer.MAX_BATCH = saved
    total = appenders * turns
    return {"turns_per_s": total / wall, "commits": stats.commits, "turns": total}


async def chain(url: str, runs: int, in_flight: int, length: int = 10) -> dict[str, Any]:
    """Like ``benchmarks.chain.measure_chain``, on any storage URL."""
    latencies: list[float] = []
    async with Runtime(url, tools=[noop], max_concurrency=max(64, in_flight)) as rt:
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

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        wall = time.perf_counter() - t0
    return {"steps_per_s": runs * length / wall, "run_p50_ms": statistics.median(latencies) * 1e3}


async def main(args: argparse.Namespace) -> None:
    print(f"store appends: {args.appenders} appenders x {args.turns} turns of 2 records")
    for label, max_batch in (("group commit", writer.MAX_BATCH), ("one turn per commit", 1)):
        r = await appends(args.url, args.appenders, args.turns, max_batch)
        print(f"  {label:22} {r['turns_per_s']:9.0f} turns/s  ({r['commits']} commits)")
    print(f"chain: {args.runs} runs of 10 steps, durability full")
    for level in (int(x) for x in args.in_flight.split(",")):
        async with fresh_schema(args.url) as schema_url:
            pg = await chain(schema_url, args.runs, level)
        with tempfile.TemporaryDirectory() as tmp:
            lite = await chain(f"sqlite:///{Path(tmp) / 'chain.db'}", args.runs, level)
        print(f"  in flight {level:4}: postgres {pg['steps_per_s']:7.0f} steps/s"
              f" (run p50 {pg['run_p50_ms']:.1f} ms), sqlite {lite['steps_per_s']:7.0f} steps/s"
              f" (run p50 {lite['run_p50_ms']:.1f} ms)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("TETHER_TEST_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--appenders", type=int, default=200)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--in-flight", default="1,50")
    asyncio.run(main(parser.parse_args()))
