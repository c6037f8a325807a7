"""The bare loops that bound Tether, measured in one run: what no runtime on this machine beats.

    python -m benchmarks.limits [--rounds 3] [--steps 20000] [--zmq-n 20000]

* **fsync**: latency of appending 100 bytes to a file and fsyncing it (what one durable
  commit costs at least).
* **SQLite, one commit per row**: stdlib sqlite3, WAL, synchronous=FULL: commits/s when
  nothing is batched.
* **SQLite group commit**: the bare aiosqlite loop (``limits_group_commit.bare_loop``), WAL,
  synchronous=FULL: producers hand 2 rows per step to one writer that commits whatever
  arrived; 1, 50 and 500 producers. This is the baseline ``chain`` divides by.
* **pyzmq round trips**: a blocking REQ/REP round trip (one in flight), and a pipelined
  ROUTER/DEALER echo with 500 in flight read in batches (what ``tether.fleet`` does).
* **actor hop**: a bare ``asyncio.Queue`` ping-pong against the kernel's ``ActorRef.ask``
  ping-pong and ``tell`` throughput.

Each figure is the median of ``--rounds`` with its spread (max - min).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from benchmarks import actor_hop, zmq_roundtrip
from benchmarks.limits_group_commit import bare_loop
from benchmarks.machine import banner, describe, summary


def fsync_latency_us(path: Path, n: int) -> float:
    """Median microseconds of one 100-byte append + fsync."""
    samples = []
    with path.open("ab") as f:
        for _ in range(n):
            started = time.perf_counter()
            f.write(b"x" * 100)
            f.flush()
            os.fsync(f.fileno())
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def sqlite_commit_per_row(path: Path, n: int) -> float:
    """Commits per second, one row each, WAL + synchronous=FULL (stdlib sqlite3)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, b"x" * 100))
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate


def _rounds(rounds: int, measure: Callable[[int], float]) -> dict[str, float]:
    return summary([measure(i) for i in range(rounds)])


def measure_all(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rounds = args.rounds
    out: list[dict[str, Any]] = []

    def add(name: str, unit: str, figures: dict[str, float]) -> None:
        out.append({"name": name, "unit": unit, **figures})
        print(
            f"{name:<48} {figures['median']:>10,.0f} {unit:<14} (spread {figures['spread']:,.0f})"
        )

    add(
        "fsync of a 100-byte append",
        "us",
        _rounds(rounds, lambda i: fsync_latency_us(tmp / f"f{i}", 200)),
    )
    per_row = _rounds(rounds, lambda i: sqlite_commit_per_row(tmp / f"c{i}.db", args.commits))
    add("SQLite WAL FULL, one commit per row", "commits/s", per_row)
    for producers in (1, 50, 500):
        steps = args.steps if producers > 1 else max(200, args.steps // 20)

        def group(i: int, p: int = producers, s: int = steps) -> float:
            rate, _ = asyncio.run(bare_loop(tmp / f"g{p}-{i}.db", s, p, "FULL"))
            return rate

        add(
            f"SQLite group commit, {producers} producers (2 rows/step)",
            "steps/s",
            _rounds(rounds, group),
        )
    n = args.zmq_n
    req_rep = _rounds(rounds, lambda i: zmq_roundtrip.blocking_req_rep(n, 1))
    add("pyzmq REQ/REP round trip, 1 in flight", "round trips/s", req_rep)
    pipelined = _rounds(rounds, lambda i: asyncio.run(zmq_roundtrip.batched_reader(n, 500)))
    add("pyzmq ROUTER/DEALER pipelined, 500 in flight", "round trips/s", pipelined)
    hops = args.hops
    for label, case in (
        ("asyncio.Queue ping-pong", actor_hop.asyncio_queue_ping_pong),
        ("ActorRef.ask ping-pong", actor_hop.actor_ask_no_timeout),
        ("ActorRef.tell throughput", actor_hop.actor_tell),
    ):

        def hop(i: int, c: Any = case) -> float:
            started = time.perf_counter()
            count: int = anyio.run(c, hops)
            return count / (time.perf_counter() - started)

        add(label, "hops/s", _rounds(rounds, hop))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="median of this many")
    parser.add_argument("--steps", type=int, default=20_000, help="group-commit steps")
    parser.add_argument("--commits", type=int, default=500, help="one-commit-per-row rows")
    parser.add_argument("--zmq-n", type=int, default=20_000, help="round trips per case")
    parser.add_argument("--hops", type=int, default=50_000, help="actor hops per case")
    args = parser.parse_args(argv)
    machine = describe()
    print(f"limits · median of {args.rounds} · {banner(machine)}")
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure_all(args, Path(tmp))
    return {"scenario": "limits", "machine": machine, "results": figures}


if __name__ == "__main__":
    main()
