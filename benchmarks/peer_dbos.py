"""The 10-step chain on DBOS with a SQLite system database; one JSON line on stdout.

    python -m benchmarks.peer_dbos --runs N --in-flight K --db PATH

Written as a DBOS user would: ``DBOS(config=...)`` with ``system_database_url`` set to a SQLite
file, an async ``@DBOS.workflow()`` awaiting ten async ``@DBOS.step()`` functions in sequence,
``DBOS.launch()``, then ``await DBOS.start_workflow_async(...)`` and ``handle.get_result()``
from K concurrent tasks. DBOS records each step's output in ``operation_outputs`` before the
workflow goes on, so the check is one row per step: exactly ``runs * 10``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from benchmarks.peers import (
    ChildArgs,
    drive,
    emit,
    library_versions,
    p50_ms,
    parse_child_args,
    scalar,
    timing_fields,
)

try:
    from dbos import DBOS
except ImportError:  # the driver checks importability first; this keeps the message clear
    sys.exit('dbos is not installed: pip install -e ".[bench]"')

STEPS = 10


@DBOS.step()
async def step_0(x: int) -> int:
    return x


# Ten distinct step functions, as ten different steps of a real workflow would be; DBOS keys
# a step's recorded output by its position in the workflow, so one function called ten times
# would be persisted the same way, but distinct names make the table readable.
@DBOS.step()
async def step_1(x: int) -> int:
    return x


@DBOS.step()
async def step_2(x: int) -> int:
    return x


@DBOS.step()
async def step_3(x: int) -> int:
    return x


@DBOS.step()
async def step_4(x: int) -> int:
    return x


@DBOS.step()
async def step_5(x: int) -> int:
    return x


@DBOS.step()
async def step_6(x: int) -> int:
    return x


@DBOS.step()
async def step_7(x: int) -> int:
    return x


@DBOS.step()
async def step_8(x: int) -> int:
    return x


@DBOS.step()
async def step_9(x: int) -> int:
    return x


CHAIN = (step_0, step_1, step_2, step_3, step_4, step_5, step_6, step_7, step_8, step_9)


@DBOS.workflow()
async def chain(x: int) -> int:
    for step in CHAIN:
        x = await step(x)
    return x


async def run_one(i: int) -> None:
    handle = await DBOS.start_workflow_async(chain, i)
    if await handle.get_result() != i:
        raise RuntimeError(f"workflow {handle.workflow_id} returned a wrong result")


def sys_db_pragmas() -> dict[str, Any]:
    """journal_mode and synchronous as DBOS's own system-database connections have them.

    DBOS sets only busy_timeout and foreign_keys on its SQLite connections, so the rest are
    SQLite's defaults; reading them from DBOS's engine (a private attribute, used here for
    instrumentation only) shows it rather than assuming it.
    """
    from dbos._dbos import _get_dbos_instance

    engine = _get_dbos_instance()._sys_db.engine
    with engine.connect() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    return {"journal_mode": str(journal).lower(), "synchronous": int(synchronous or 0)}


async def measure(args: ChildArgs) -> dict[str, Any]:
    DBOS(config={"name": "peers-chain", "system_database_url": f"sqlite:///{args.db}"})
    # Launched inside the running loop, so DBOS runs async workflows on this loop.
    DBOS.launch()
    try:
        elapsed, latencies = await drive(run_one, args.runs, args.in_flight)
        pragmas = await asyncio.to_thread(sys_db_pragmas)
    finally:
        DBOS.destroy()
    persisted = scalar(args.db, "SELECT COUNT(*) FROM operation_outputs")
    succeeded = scalar(args.db, "SELECT COUNT(*) FROM workflow_status WHERE status = 'SUCCESS'")
    if succeeded != args.runs:
        raise RuntimeError(f"{succeeded} workflows recorded SUCCESS, expected {args.runs}")
    return {
        "system": "dbos",
        "versions": library_versions("dbos"),
        "pragmas": pragmas,
        "persisted_rows": persisted,
        "persisted_what": "operation_outputs rows (one per step)",
        "expected_rows": args.runs * STEPS,
        "persisted_ok": persisted == args.runs * STEPS,
        **timing_fields(args, STEPS, elapsed, p50_ms(latencies)),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_child_args(argv, __doc__)
    emit(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
