"""Tether's 10-step chain (``benchmarks.chain.measure_chain``), as a peer child; one JSON line.

    python -m benchmarks.peer_tether --runs N --in-flight K --db PATH

Durability ``full``: the store opens its SQLite file with journal_mode=WAL and
synchronous=FULL (``tether.persistence.sqlite.store``), so each acknowledged turn survives
power loss. The check counts the journal's ``node_completed`` records: exactly one per step.
"""

from __future__ import annotations

from typing import Any

import anyio

from benchmarks.chain import measure_chain
from benchmarks.peers import (
    ChildArgs,
    emit,
    library_versions,
    parse_child_args,
    scalar,
    timing_fields,
)

STEPS = 10
#: PRAGMA synchronous=FULL, which durability "full" sets on the store's writer connection.
SYNCHRONOUS_FULL = 2


def measure(args: ChildArgs) -> dict[str, Any]:
    result = anyio.run(measure_chain, args.db, args.runs, args.in_flight, "full", STEPS)
    persisted = scalar(args.db, "SELECT COUNT(*) FROM journal WHERE type = 'node_completed'")
    # journal_mode=WAL belongs to the file, so it reads back once the runtime has closed;
    # synchronous is per connection and cannot be, hence the constant.
    journal_mode = str(scalar(args.db, "PRAGMA journal_mode")).lower()
    return {
        "system": "tether",
        "versions": library_versions("tether", "aiosqlite"),
        "pragmas": {"journal_mode": journal_mode, "synchronous": SYNCHRONOUS_FULL},
        "persisted_rows": persisted,
        "persisted_what": "journal node_completed records (one per step)",
        "expected_rows": args.runs * STEPS,
        "persisted_ok": persisted == args.runs * STEPS,
        **timing_fields(args, STEPS, result["seconds"], result["run_p50_ms"]),
    }


def main(argv: list[str] | None = None) -> None:
    emit(measure(parse_child_args(argv, __doc__)))


if __name__ == "__main__":
    main()
