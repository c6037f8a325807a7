"""Counts and pages over a million runs: the run views and their counters against the
executions index they replaced for cross-run reads, and the projector filling them.

    python -m benchmarks.views [--runs 1000000] [--workflows 20] [--days 30] [--repeats 5]

Builds a SQLite file with ``--runs`` executions (created over ``--days``, spread over
``--workflows`` workflows, statuses mostly finished) written straight into the index and the
run views' feed, as a month of turns would have left them. Then:

- *before*: each count the dashboard asks for, as it was read until now: ``GROUP BY status``
  over the executions index (its status, created and workflow indexes);
- the projector draining the feed into the views (``Store.project_views``, batches of 1000,
  each a transaction of the writer): status changes per second;
- *after*: the same counts through ``Store.count_executions`` (whole hours from the counters,
  the ragged ends of a window from the view's rows), and a first page of each filter.

Prints the median of ``--repeats`` reads per query, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.chain import chain_workflow, noop
from benchmarks.machine import banner, describe
from tether import Runtime
from tether.persistence import SqliteStore
from tether.persistence.page_sql import SQLITE, execution_where
from tether.persistence.pages import ExecutionQuery
from tether.persistence.views import HOUR_MS
from tether.runtime.internals import runtime_internals

#: Statuses as a month of traffic leaves them: mostly finished, a few waiting.
_STATUSES = (("completed", 0.86), ("failed", 0.08), ("cancelled", 0.02), ("paused", 0.02),
             ("running", 0.02))  # fmt: skip
_T0 = 1_790_000_000_000  # a fixed epoch: the same file every time


def build(db: Path, runs: int, workflows: int, days: int, seed: int = 7) -> None:
    """The index rows and one feed row per run, written in bulk (no turns, no journal)."""
    asyncio.run(_migrate(db))
    rng = random.Random(seed)
    statuses = [s for s, _ in _STATUSES]
    weights = [w for _, w in _STATUSES]
    span = days * 24 * HOUR_MS
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    chunk = 100_000
    for start in range(0, runs, chunk):
        rows = []
        for i in range(start, min(start + chunk, runs)):
            created = _T0 + rng.randrange(span)
            status = rng.choices(statuses, weights)[0]
            rows.append((f"exec_{i:010d}", f"wf{rng.randrange(workflows):02d}", "1", status,
                         created, created + 1000, 10, None))  # fmt: skip
        conn.executemany(
            "INSERT INTO executions (execution_id, workflow_id, workflow_version, status,"
            " created_at_ms, updated_at_ms, last_seq, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO view_feed (execution_id, seq) VALUES (?, ?)", [(r[0], 10) for r in rows]
        )
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


async def _migrate(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    await store.close()


def queries(days: int) -> dict[str, ExecutionQuery]:
    end = _T0 + days * 24 * HOUR_MS
    return {
        "all runs, per status": ExecutionQuery(),
        "one workflow": ExecutionQuery(workflow_id="wf03"),
        "last 24 h": ExecutionQuery(created_from_ms=end - 24 * HOUR_MS + 1_234_567),
        "one workflow, last 7 days": ExecutionQuery(
            workflow_id="wf03", created_from_ms=end - 7 * 24 * HOUR_MS + 987_654
        ),
        "a ragged 10-day window": ExecutionQuery(
            created_from_ms=_T0 + 3 * 24 * HOUR_MS + 1_000_017,
            created_before_ms=_T0 + 13 * 24 * HOUR_MS + 2_600_043,
        ),
        "search by id": ExecutionQuery(id_contains="0000777"),
    }


def count_before(conn: sqlite3.Connection, query: ExecutionQuery) -> dict[str, int]:
    """The count as the dashboard read it until now: the executions index, grouped."""
    where, params = execution_where(query, SQLITE, with_status=False)
    clause = " AND ".join(where)
    rows = conn.execute(
        f"SELECT status, COUNT(*) FROM executions {'WHERE ' + clause if clause else ''}"
        " GROUP BY status",
        params,
    ).fetchall()
    return {str(s): int(n) for s, n in rows}


def _median_ms(fn: Any, repeats: int) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, out


async def measure(db: Path, days: int, repeats: int) -> dict[str, Any]:
    qs = queries(days)
    conn = sqlite3.connect(db)
    before: dict[str, float] = {}
    expected: dict[str, dict[str, int]] = {}
    for name, q in qs.items():
        before[name], expected[name] = _median_ms(lambda q=q: count_before(conn, q), repeats)
    conn.close()

    store = SqliteStore(db)
    await store.open()
    try:
        behind = await store.views_behind()
        t0 = time.perf_counter()
        while await store.project_views(1000) == 1000:
            pass
        projection_s = time.perf_counter() - t0
        after: dict[str, float] = {}
        pages: dict[str, float] = {}
        for name, q in qs.items():
            times, page_times = [], []
            for _ in range(repeats):
                t = time.perf_counter()
                got = await store.count_executions(q)
                times.append(time.perf_counter() - t)
                t = time.perf_counter()
                await store.page_executions(q, None, 50)
                page_times.append(time.perf_counter() - t)
            if got != expected[name]:
                raise AssertionError(f"{name}: views count {got}, index {expected[name]}")
            after[name] = statistics.median(times) * 1000
            pages[name] = statistics.median(page_times) * 1000
    finally:
        await store.close()
    return {
        "projected": behind,
        "projection_s": projection_s,
        "projected_per_s": behind / projection_s if projection_s else 0.0,
        "before_ms": before,
        "after_ms": after,
        "page_ms": pages,
    }


async def measure_lag(db: Path, runs: int, in_flight: int) -> dict[str, Any]:
    """The chain benchmark's load (10-step chains, ``in_flight`` at once) with the projector
    following: how long a status change waits to be in the views, and the feed's backlog."""
    async with Runtime(f"sqlite:///{db}", tools=[noop], max_concurrency=max(64, in_flight)) as rt:
        wf = rt.register(chain_workflow(10))
        await runtime_internals(rt).persist(wf)
        remaining = runs
        backlog: list[int] = []
        done = asyncio.Event()

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await (await rt.start(wf, {})).result()

        async def sampler() -> None:
            while not done.is_set():
                backlog.append(await rt.store.views_behind())
                await asyncio.sleep(0.005)

        t0 = time.perf_counter()
        sampling = asyncio.ensure_future(sampler())
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        wall = time.perf_counter() - t0
        done.set()
        await sampling
        await runtime_internals(rt).services.views.catch_up()
        lag = runtime_internals(rt).services.views.lag
        counted = await rt.store.count_executions(ExecutionQuery())
    assert counted == {"completed": runs}, counted
    return {
        "in_flight": in_flight,
        "steps_per_s": runs * 10 / wall,
        "lag_mean_ms": lag.total_s / max(lag.nudged, 1) * 1000,
        "lag_max_ms": lag.max_s * 1000,
        "projections": lag.projections,
        "changes_per_projection": lag.projected / max(lag.projections, 1),
        "backlog_max": max(backlog, default=0),
        "backlog_p50": statistics.median(backlog) if backlog else 0,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lag-runs", type=int, default=1000, help="chains for the lag (0: skip)")
    parser.add_argument("--lag-in-flight", default="1,50,500")
    args = parser.parse_args(argv)
    machine = describe()
    print(banner(machine))
    lags = []
    for in_flight in [int(n) for n in args.lag_in_flight.split(",")] if args.lag_runs else []:
        with tempfile.TemporaryDirectory() as tmp:
            lag = asyncio.run(measure_lag(Path(tmp) / "lag.db", args.lag_runs, in_flight))
        lags.append(lag)
        print(
            f"chain, {in_flight} in flight: {lag['steps_per_s']:,.0f} steps/s; a status change"
            f" waited {lag['lag_mean_ms']:.1f} ms mean, {lag['lag_max_ms']:.1f} ms max for the"
            f" views; {lag['changes_per_projection']:.1f} per projection; feed backlog"
            f" p50 {lag['backlog_p50']:.0f}, max {lag['backlog_max']}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "views.db"
        t0 = time.perf_counter()
        build(db, args.runs, args.workflows, args.days)
        print(f"built {args.runs:,} runs in {time.perf_counter() - t0:.1f} s")
        r = asyncio.run(measure(db, args.days, args.repeats))
    print(
        f"projector: {r['projected']:,} status changes in {r['projection_s']:.1f} s"
        f" ({r['projected_per_s']:,.0f}/s, batches of 1000)"
    )
    print(f"{'count':28} {'before ms':>10} {'after ms':>10} {'page ms':>9}")
    for name in r["before_ms"]:
        print(f"{name:28} {r['before_ms'][name]:10.2f} {r['after_ms'][name]:10.2f}"
              f" {r['page_ms'][name]:9.2f}")  # fmt: skip
    return {"machine": machine, "args": vars(args), "lag": lags, **r}


if __name__ == "__main__":
    main()
