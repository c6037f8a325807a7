"""What a busy event loop costs the SQLite writer's thread: the GIL handed back once a row.

    python -m benchmarks.gil_handoff [--rows 100,1000] [--switch-interval 0.005,0.001] [--repeat 5]

The journal writer commits on its own thread (aiosqlite), while the event loop runs the
executions' steps. sqlite3 releases the GIL around each row's ``sqlite3_step`` and needs it
back to bind the next row: with the loop thread busy, each hand-back waits for CPython's
switch interval (5 ms by default) to force a switch. This measures one ``executemany`` of
``--rows`` journal-like rows and its commit on a thread, with the main thread idle (blocked
in a join, as the loop is in epoll while it waits for a commit) and busy (running Python),
for each ``--switch-interval``; then the same rows as one statement (``INSERT ... SELECT``
from ``json_each`` over one JSON parameter and one concatenated blob), which hands the GIL
back a few times a commit instead of once a row.

It is why, at 500 runs in flight, the chain's event loop waits for its commits instead of
stepping while they run (``python -m benchmarks chain``: wall time per step minus event-loop
CPU per step): a commit overlapping busy steps takes longer than the steps it overlaps.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.machine import banner, describe

_SCHEMA = "CREATE TABLE journal (execution_id TEXT, seq INTEGER, payload BLOB, checksum INTEGER)"
_INSERT = "INSERT INTO journal VALUES (?, ?, ?, ?)"
_INSERT_FROM_JSON = (
    "INSERT INTO journal SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " substr(?2, json_extract(value, '$[2]'), json_extract(value, '$[3]')),"
    " json_extract(value, '$[4]') FROM json_each(?1)"
)
_PAYLOAD = bytes(range(120))  # about a node_completed record's size


def _rows(n: int, base: int) -> list[tuple[Any, ...]]:
    return [(f"exec-{i % 500}", base + i, bytearray(_PAYLOAD), i) for i in range(n)]


def _as_one_statement(rows: list[tuple[Any, ...]]) -> tuple[str, bytes]:
    index, blobs, offset = [], [], 1
    for eid, seq, payload, checksum in rows:
        index.append([eid, seq, offset, len(payload), checksum])
        blobs.append(bytes(payload))
        offset += len(payload)
    return json.dumps(index), b"".join(blobs)


def _timed_commit(
    conn: sqlite3.Connection, write: Callable[[], None], out: dict[str, float]
) -> None:
    started = time.perf_counter()
    conn.execute("BEGIN")
    write()
    written = time.perf_counter()
    conn.execute("COMMIT")
    out["write_ms"] = (written - started) * 1000
    out["commit_ms"] = (time.perf_counter() - written) * 1000


def measure(db: Path, rows: int, busy: bool, one_statement: bool, base: int) -> dict[str, float]:
    """One commit of ``rows`` rows on a thread while this thread is idle or busy."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        batch = _rows(rows, base)
        if one_statement:
            params = _as_one_statement(batch)

            def write() -> None:
                conn.execute(_INSERT_FROM_JSON, params)

        else:

            def write() -> None:
                conn.executemany(_INSERT, batch)

        out: dict[str, float] = {}
        writer = threading.Thread(target=_timed_commit, args=(conn, write, out))
        writer.start()
        if busy:
            spins = 0
            while writer.is_alive():  # Python work, as a loop stepping executions does
                for _ in range(200):
                    spins += 1
        writer.join()
        return out
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100,1000", help="rows per commit")
    parser.add_argument("--switch-interval", default="0.005,0.001", help="seconds, each in turn")
    parser.add_argument("--repeat", type=int, default=5, help="median of this many commits")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.rows.split(",")]
    intervals = [float(x) for x in args.switch_interval.split(",")]
    machine = describe()
    print(
        f"gil_handoff: one commit on a thread, the main thread idle or busy,"
        f" median of {args.repeat} · {banner(machine)}"
    )
    results = []
    previous = sys.getswitchinterval()
    base = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "handoff.db"
            setup = sqlite3.connect(db, isolation_level=None)
            setup.execute("PRAGMA journal_mode=WAL")
            setup.execute("PRAGMA synchronous=FULL")
            setup.execute(_SCHEMA)
            setup.close()
            for interval in intervals:
                sys.setswitchinterval(interval)
                for rows in sizes:
                    for one in (False, True):
                        for busy in (False, True):
                            runs = []
                            for _ in range(args.repeat):
                                runs.append(measure(db, rows, busy, one, base))
                                base += rows
                            r = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                            r |= {"rows": rows, "busy": busy, "one_statement": one,
                                  "switch_interval_ms": interval * 1000}  # fmt: skip
                            results.append(r)
                            print(
                                f"  switch {interval * 1000:4.1f} ms  rows {rows:5d}"
                                f"  {'one statement' if one else 'executemany  '}"
                                f"  main {'busy' if busy else 'idle'}:"
                                f"  write {r['write_ms']:8.2f} ms  commit {r['commit_ms']:7.2f} ms"
                            )
    finally:
        sys.setswitchinterval(previous)
    return {"scenario": "gil_handoff", "machine": machine, "results": results}


if __name__ == "__main__":
    main()
