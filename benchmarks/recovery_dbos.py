"""The DBOS side of benchmarks.recovery: ``start``, ``resume`` or ``inspect`` one database.

    python -m benchmarks.recovery_dbos start|resume|inspect --db F --log F [--runs 200] ...

``start`` launches DBOS on a SQLite system database and starts every run (a ``@DBOS.workflow``
calling a ``@DBOS.step`` per step) under its run id. ``resume`` launches DBOS on the same
file, which recovers every pending workflow of this executor, and reports once the system
database shows each run finished. ``inspect`` lists each workflow's recorded steps with a
``DBOSClient`` (which recovers nothing).
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()  # before the imports: they are part of a restart

import asyncio  # noqa: E402
from typing import Any  # noqa: E402

from dbos import DBOS, DBOSClient, SetWorkflowID  # noqa: E402

from benchmarks.recovery import EFFECTS, child_parser, emit, run_ids  # noqa: E402

STEP_SECONDS = 0.05  # set from --step-ms; a process-wide setting, not a workflow argument
TERMINAL = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}
# How often resume reads the statuses: one query for all runs, so it costs DBOS little.
POLL_SECONDS = 0.05


@DBOS.step()
async def step(run: str, i: int) -> int:
    EFFECTS.step(run, i)
    await asyncio.sleep(STEP_SECONDS)
    return i


@DBOS.workflow()
async def chain(run: str, steps: int) -> int:
    for i in range(steps):
        await step(run, i)
    EFFECTS.run_finished(run)
    return steps


def configure(db: str) -> None:
    DBOS(config={"name": "recovery", "system_database_url": f"sqlite:///{db}"})


async def start(runs: int, steps: int) -> None:
    DBOS.launch()
    await asyncio.gather(*(start_one(run_id, steps) for run_id in run_ids(runs)))
    await asyncio.Event().wait()  # the driver kills the process


async def start_one(run_id: str, steps: int) -> None:
    with SetWorkflowID(run_id):  # a context variable: each task has its own
        await DBOS.start_workflow_async(chain, run_id, steps)


async def resume(db: str, runs: int, deadline: float) -> None:
    t_open = time.perf_counter()
    configure(db)
    DBOS.launch()  # recovers this executor's pending workflows
    t_opened = time.perf_counter()
    ids = run_ids(runs)
    statuses = await read_statuses(ids)
    while time.perf_counter() - t_open < deadline and not all(
        s in TERMINAL for s in statuses.values()
    ):
        await asyncio.sleep(POLL_SECONDS)
        statuses = await read_statuses(ids)
    t_done = time.perf_counter()
    values = list(statuses.values()) + ["missing"] * (runs - len(statuses))
    emit(
        "done",
        open_to_done_s=t_done - t_open,
        launch_s=t_opened - t_open,
        imports_s=t_open - T_PROCESS,
        completed=values.count("SUCCESS"),
        statuses={s: values.count(s) for s in set(values)},
    )
    DBOS.destroy(destroy_registry=False)


async def read_statuses(ids: list[str]) -> dict[str, str]:
    listed: list[Any] = await DBOS.list_workflows_async(
        workflow_ids=ids, load_input=False, load_output=False
    )
    return {w.workflow_id: w.status for w in listed}


def inspect(db: str, runs: int) -> None:
    client = DBOSClient(system_database_url=f"sqlite:///{db}")
    try:
        persisted: list[tuple[str, int]] = []
        ids = run_ids(runs)
        for run_id in ids:
            for info in client.list_workflow_steps(run_id, load_output=False):
                # The workflow calls only ``step``, in order: function id i + 1 is step i.
                persisted.append((run_id, info["function_id"] - 1))
        done = client.list_workflows(
            workflow_ids=ids, status="SUCCESS", load_input=False, load_output=False
        )
    finally:
        client.destroy()
    emit("persisted", steps=persisted, unfinished=runs - len(done))


def main() -> None:
    global STEP_SECONDS
    args = child_parser(__doc__.splitlines()[0]).parse_args()
    STEP_SECONDS = args.step_ms / 1000
    db = str(args.db.resolve())
    if args.phase == "inspect":
        inspect(db, args.runs)
        return
    EFFECTS.open(args.log, args.runs)
    if args.phase == "start":
        configure(db)
        asyncio.run(start(args.runs, args.steps))
    else:
        asyncio.run(resume(db, args.runs, args.deadline))


if __name__ == "__main__":
    main()
