"""The LangGraph side of benchmarks.recovery: ``start``, ``resume`` or ``inspect`` one database.

    python -m benchmarks.recovery_langgraph start|resume|inspect --db F --log F
        [--durability sync|async] [--runs 200] ...

Each run is a thread of a ``StateGraph`` of ``--steps`` nodes in a row, checkpointed by an
``AsyncSqliteSaver``. ``start`` invokes every thread at once and runs until killed. LangGraph
recovers nothing by itself: ``resume`` asks the checkpointer for each thread's last checkpoint
and, as its docs say, continues an unfinished thread with ``ainvoke(None, config)``; a thread
with no checkpoint at all is started again from its input (``started_over``). ``inspect``
reads the last checkpoint of each thread and its pending writes: the steps whose results are
saved.
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()  # before the imports: they are part of a restart

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import operator  # noqa: E402
from typing import Annotated, Any, Literal, TypedDict  # noqa: E402

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.graph.state import CompiledStateGraph  # noqa: E402

from benchmarks.recovery import EFFECTS, child_parser, emit, run_ids  # noqa: E402

STEP_SECONDS = 0.05  # set from --step-ms; a process-wide setting, not part of the state
Durability = Literal["sync", "async", "exit"]


class ChainState(TypedDict):
    run: str
    done: Annotated[list[int], operator.add]  # the steps that completed, in order


def node(i: int) -> Any:  # LangGraph's node protocol names the parameter: no Callable[...]
    async def step(state: ChainState) -> dict[str, Any]:
        EFFECTS.step(state["run"], i)
        await asyncio.sleep(STEP_SECONDS)
        return {"done": [i]}

    return step


def build(steps: int, saver: AsyncSqliteSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(ChainState)
    names = [f"s{i}" for i in range(steps)]
    for i, name in enumerate(names):
        graph.add_node(name, node(i))
    for a, b in zip([START, *names], [*names, END], strict=True):
        graph.add_edge(a, b)
    return graph.compile(checkpointer=saver)


def config(run_id: str) -> Any:
    return {"configurable": {"thread_id": run_id}}


async def start(db: str, runs: int, steps: int, durability: Durability) -> None:
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        app = build(steps, saver)

        async def one(run_id: str) -> None:
            await app.ainvoke({"run": run_id, "done": []}, config(run_id), durability=durability)
            EFFECTS.run_finished(run_id)

        await asyncio.gather(*(one(run_id) for run_id in run_ids(runs)))
        await asyncio.Event().wait()  # the driver kills the process


async def resume(db: str, runs: int, steps: int, durability: Durability, deadline: float) -> None:
    t_open = time.perf_counter()
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        app = build(steps, saver)
        started_over = 0

        async def one(run_id: str) -> None:
            nonlocal started_over
            if await saver.aget_tuple(config(run_id)) is None:
                # Nothing saved: only the application knows the input; it starts the run again.
                started_over += 1
                await app.ainvoke(
                    {"run": run_id, "done": []}, config(run_id), durability=durability
                )
            else:
                # From the last checkpoint, applying the results saved after it (a finished
                # thread returns at once). Not ``aget_state().next``: a checkpoint followed by
                # a saved result shows no next node although the run is not finished.
                await app.ainvoke(None, config(run_id), durability=durability)

        with contextlib.suppress(TimeoutError):  # the runs not finished count as lost
            await asyncio.wait_for(
                asyncio.gather(*(one(run_id) for run_id in run_ids(runs))), deadline
            )
        t_done = time.perf_counter()
        completed = 0
        for run_id in run_ids(runs):
            snapshot = await app.aget_state(config(run_id))
            completed += not snapshot.next and len(set(snapshot.values.get("done", []))) == steps
    emit(
        "done",
        open_to_done_s=t_done - t_open,
        imports_s=t_open - T_PROCESS,
        completed=completed,
        started_over=started_over,
    )


async def inspect(db: str, runs: int, steps: int) -> None:
    persisted: list[tuple[str, int]] = []
    unfinished = 0
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        for run_id in run_ids(runs):
            saved = await saver.aget_tuple(config(run_id))
            if saved is None:
                unfinished += 1
                continue
            done = list(saved.checkpoint["channel_values"].get("done", []))
            # A node's result saved before the checkpoint that follows it: resume applies it
            # without running the node again.
            for _task, channel, value in saved.pending_writes or []:
                if channel == "done":
                    done.extend(value)
            persisted.extend((run_id, i) for i in done)
            unfinished += len(set(done)) < steps
    emit("persisted", steps=persisted, unfinished=unfinished)


def main() -> None:
    global STEP_SECONDS
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument("--durability", choices=["sync", "async", "exit"], default="sync")
    args = parser.parse_args()
    STEP_SECONDS = args.step_ms / 1000
    db = str(args.db.resolve())
    if args.phase == "inspect":
        asyncio.run(inspect(db, args.runs, args.steps))
        return
    EFFECTS.open(args.log, args.runs)
    if args.phase == "start":
        asyncio.run(start(db, args.runs, args.steps, args.durability))
    else:
        asyncio.run(resume(db, args.runs, args.steps, args.durability, args.deadline))


if __name__ == "__main__":
    main()
