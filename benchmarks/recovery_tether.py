"""The Tether side of benchmarks.recovery: ``start``, ``resume`` or ``inspect`` one database.

    python -m benchmarks.recovery_tether start|resume|inspect --db F --log F [--runs 200] ...

``start`` starts every run (a chain of ``step`` tool nodes) and runs until killed. ``resume``
opens a ``Runtime`` on the same file, which resumes every unfinished execution from its
journal, and reports once each run is done. ``inspect`` reads the journal read-only: the steps
whose ``node_completed`` record is committed.
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()  # before the imports: they are part of a restart

import anyio  # noqa: E402

from benchmarks.recovery import EFFECTS, child_parser, emit, run_ids  # noqa: E402
from tether import Runtime, tool  # noqa: E402
from tether.errors import ExecutionNotFound  # noqa: E402
from tether.ir.types import END, Edge, Node, ToolKind, Workflow  # noqa: E402
from tether.persistence import open_store  # noqa: E402
from tether.runtime.records import NodeCompleted, decode_rows  # noqa: E402

STEP_SECONDS = 0.05  # set from --step-ms; a process-wide setting, not part of the run's state


@tool
async def step(run: str, i: int) -> int:
    EFFECTS.step(run, i)
    await anyio.sleep(STEP_SECONDS)
    return i


def chain(steps: int) -> Workflow:
    """``steps`` tool nodes in a row; node ``s<i>`` runs ``step(run=$run, i=i)``."""
    ids = [f"s{i}" for i in range(steps)]
    nodes = {
        node_id: Node(id=node_id, kind=ToolKind(tool_ref="step"), input={"i": i})
        for i, node_id in enumerate(ids)
    }
    edges = [Edge(from_=a, to=b) for a, b in zip(ids, [*ids[1:], END], strict=True)]
    return Workflow(
        workflow_id="recovery", version="1", start_node=ids[0], nodes=nodes, edges=edges
    )


def url(db: str) -> str:
    return f"sqlite:///{db}"  # an absolute path gives the sqlite://// form


async def start(db: str, runs: int, steps: int, max_concurrency: int) -> None:
    async with Runtime(url(db), tools=[step], max_concurrency=max_concurrency) as rt:
        wf = rt.register(chain(steps))

        async def one(run_id: str) -> None:
            run = await rt.start(wf, {"run": run_id}, execution_id=run_id)
            await run.result()
            EFFECTS.run_finished(run_id)

        async with anyio.create_task_group() as tg:
            for run_id in run_ids(runs):
                tg.start_soon(one, run_id)
        await anyio.sleep_forever()  # the driver kills the process


async def resume(db: str, runs: int, steps: int, deadline: float, max_concurrency: int) -> None:
    t_open = time.perf_counter()
    async with Runtime(url(db), tools=[step], max_concurrency=max_concurrency) as rt:
        t_opened = time.perf_counter()  # the runtime resumed the unfinished runs on open
        rt.register(chain(steps))
        with anyio.move_on_after(deadline):
            async with anyio.create_task_group() as tg:
                for run_id in run_ids(runs):
                    tg.start_soon(wait_quietly, rt, run_id)
        t_done = time.perf_counter()
        statuses = [await status(rt, run_id) for run_id in run_ids(runs)]
    emit(
        "done",
        open_to_done_s=t_done - t_open,
        runtime_open_s=t_opened - t_open,
        imports_s=t_open - T_PROCESS,
        completed=statuses.count("completed"),
        statuses={s: statuses.count(s) for s in set(statuses)},
    )


async def wait_quietly(rt: Runtime, run_id: str) -> None:
    """Wait for a run to end; a run that is missing or fails shows in its status."""
    try:
        await rt.wait(run_id)
    except Exception:  # the status reports it; the other runs go on
        return


async def status(rt: Runtime, run_id: str) -> str:
    try:
        return (await rt.get_execution(run_id)).status
    except ExecutionNotFound:
        return "missing"


async def inspect(db: str, runs: int) -> None:
    store = await open_store(url(db), readonly=True)
    try:
        persisted: list[tuple[str, int]] = []
        unfinished = 0
        for run_id in run_ids(runs):
            row = await store.get_execution(run_id)
            unfinished += row is None or row.status != "completed"
            for entry in decode_rows(await store.read(run_id)):
                if isinstance(entry.record, NodeCompleted):
                    persisted.append((run_id, int(entry.record.node_id[1:])))
    finally:
        await store.close()
    emit("persisted", steps=persisted, unfinished=unfinished)


def main() -> None:
    global STEP_SECONDS
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--max-concurrency", type=int, default=0, help="in-process tool slots (0: one per run)"
    )
    args = parser.parse_args()
    STEP_SECONDS = args.step_ms / 1000
    # Every run's step must be able to run at once, as with the peers (no limit there).
    slots = args.max_concurrency or max(256, args.runs)
    db = str(args.db.resolve())
    if args.phase == "inspect":
        anyio.run(inspect, db, args.runs)
        return
    EFFECTS.open(args.log, args.runs)
    if args.phase == "start":
        anyio.run(start, db, args.runs, args.steps, slots)
    else:
        anyio.run(resume, db, args.runs, args.steps, args.deadline, slots)


if __name__ == "__main__":
    main()
