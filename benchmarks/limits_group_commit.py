"""Group commit: a bare aiosqlite loop against ``SqliteStore.append``, in one run.

(a) P producer tasks each append 2 rows per step, as runs of 10 steps under a new execution
id each (the chain's keys), through one writer task that drains whatever is queued into one
transaction (``executemany`` + commit), the lower bound on cost; (b) the same workload through
``SqliteStore.append`` (one Turn of 2 records per step), which adds sequence checks, checksums
and the futures. Prints steps/s, rows per commit and (b)/(a).

Run::

    python -m benchmarks.limits_group_commit --steps 20000 --producers 500 --durability full
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiosqlite

from tether.persistence import NewRecord, SqliteStore, Turn

PAYLOAD_A = b"a" * 64
PAYLOAD_B = b"b" * 64

_SCHEMA = """
CREATE TABLE journal (
    execution_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    payload BLOB NOT NULL, checksum INTEGER NOT NULL, PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
"""

Job = tuple[list[tuple[str, int, str, bytes, int]], "asyncio.Future[None]"]


#: Steps per run: each producer starts a new execution id this often, as the chain does.
RUN_LENGTH = 10


async def bare_loop(
    path: Path, steps: int, producers: int, sync: str, run_length: int = RUN_LENGTH
) -> tuple[float, float]:
    """The bare group-commit loop; returns (steps/s, rows per commit).

    Keys as the chain's journal has them: a new execution id every ``run_length`` steps,
    ids ascending in creation order like ULIDs. (With one id per producer for the whole
    run, each execution grew past a page and every commit dirtied one page per producer:
    the rate fell from ~40k to ~16k steps/s between 10,000 and 100,000 steps, a cost the
    chain's short runs never pay.)
    """
    conn = await aiosqlite.connect(path)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute(f"PRAGMA synchronous={sync}")
    await conn.executescript(_SCHEMA)
    queue: asyncio.Queue[Job] = asyncio.Queue()
    commits = 0

    async def writer() -> None:
        nonlocal commits
        while True:
            jobs = [await queue.get()]
            while not queue.empty():
                jobs.append(queue.get_nowait())
            await conn.executemany(
                "INSERT INTO journal VALUES (?, ?, ?, ?, ?)", [r for rows, _ in jobs for r in rows]
            )
            await conn.commit()
            commits += 1
            for _, fut in jobs:
                fut.set_result(None)

    runs = itertools.count()

    async def producer(count: int) -> None:
        loop = asyncio.get_running_loop()
        for eid, seq in _step_keys(count, run_length, runs):
            fut: asyncio.Future[None] = loop.create_future()
            rows = [(eid, seq, "a", PAYLOAD_A, 0), (eid, seq + 1, "b", PAYLOAD_B, 0)]
            queue.put_nowait((rows, fut))
            await fut

    task = asyncio.create_task(writer())
    started = time.perf_counter()
    await asyncio.gather(*(producer(c) for _, c in _shares(steps, producers)))
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await conn.close()
    return steps / elapsed, 2 * steps / max(commits, 1)


async def store_loop(
    path: Path, steps: int, producers: int, durability: str, run_length: int = RUN_LENGTH
) -> tuple[float, float]:
    """The same workload through SqliteStore.append; returns (steps/s, rows per commit)."""
    store = SqliteStore(path, durability="full" if durability == "full" else "normal")
    await store.open()

    runs = itertools.count()

    async def producer(count: int) -> None:
        for eid, seq in _step_keys(count, run_length, runs):
            records = (NewRecord("a", PAYLOAD_A), NewRecord("b", PAYLOAD_B))
            await store.append(Turn(eid, seq, records))

    started = time.perf_counter()
    await asyncio.gather(*(producer(c) for _, c in _shares(steps, producers)))
    elapsed = time.perf_counter() - started
    stats = store.stats
    await store.close()
    return steps / elapsed, stats.rows / max(stats.commits, 1)


def _step_keys(count: int, run_length: int, runs: Iterator[int]) -> Iterator[tuple[str, int]]:
    """Each of a producer's steps: its execution id (a new one every ``run_length`` steps,
    numbered from ``runs``, shared by all producers) and the seq of its first row."""
    eid, seq = "", 1
    for k in range(count):
        if k % run_length == 0:
            eid, seq = f"exec_{next(runs):012d}", 1
        yield eid, seq
        seq += 2


def _shares(steps: int, producers: int) -> list[tuple[int, int]]:
    base, extra = divmod(steps, producers)
    return [(n, base + (1 if n < extra else 0)) for n in range(producers)]


async def main_async(steps: int, producers: int, durability: str, rounds: int) -> None:
    sync = "FULL" if durability == "full" else "NORMAL"
    bare: list[tuple[float, float]] = []
    store: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        for i in range(rounds):  # interleaved, so drift hits both alike
            bare.append(await bare_loop(Path(tmp, f"bare{i}.db"), steps, producers, sync))
            store.append(await store_loop(Path(tmp, f"store{i}.db"), steps, producers, durability))
    b = statistics.median(s for s, _ in bare)
    s = statistics.median(s for s, _ in store)
    print(f"steps={steps} producers={producers} durability={durability} rounds={rounds} (median)")
    print(f"(a) bare aiosqlite group commit : {b:9.0f} steps/s, "
          f"{statistics.median(r for _, r in bare):7.1f} rows/commit")  # fmt: skip
    print(f"(b) SqliteStore.append          : {s:9.0f} steps/s, "
          f"{statistics.median(r for _, r in store):7.1f} rows/commit")  # fmt: skip
    print(f"ratio (b)/(a)                   : {s / b:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=500)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main_async(args.steps, args.producers, args.durability, args.rounds))


if __name__ == "__main__":
    main()
