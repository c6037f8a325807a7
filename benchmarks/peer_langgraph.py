"""The 10-step chain on LangGraph with AsyncSqliteSaver; one JSON line on stdout.

    python -m benchmarks.peer_langgraph --runs N --in-flight K --db PATH

Written as a LangGraph user would: a ``StateGraph`` of ten nodes in a chain (each returns its
input), compiled with ``checkpointer=`` an ``AsyncSqliteSaver.from_conn_string(path)``, and each
run is ``await graph.ainvoke(input, {"configurable": {"thread_id": ...}}, durability="sync")``
from K concurrent tasks. ``durability="sync"`` saves each step's checkpoint before the next
step starts (the default, "async", saves it while the next step runs, and a crash can lose
it). The saver writes one checkpoint per superstep: the input (step -1), ``__start__``
(step 0) and one per node, so 12 rows per run; the check is at least ``runs * 10`` rows and
``runs`` distinct threads.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TypedDict

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
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.graph.state import CompiledStateGraph
except ImportError:  # the driver checks importability first; this keeps the message clear
    sys.exit('langgraph / langgraph-checkpoint-sqlite are not installed: pip install -e ".[bench]"')

STEPS = 10


class ChainState(TypedDict):
    x: int


async def step(state: ChainState) -> dict[str, int]:
    return {"x": state["x"]}


def build_graph(saver: AsyncSqliteSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(ChainState)
    names = [f"s{i}" for i in range(STEPS)]
    for name in names:
        builder.add_node(name, step)
    for a, b in zip([START, *names], [*names, END], strict=True):
        builder.add_edge(a, b)
    return builder.compile(checkpointer=saver)


async def saver_pragmas(saver: AsyncSqliteSaver) -> dict[str, Any]:
    """journal_mode and synchronous on the saver's own connection (it sets WAL in setup();
    synchronous is left at SQLite's default)."""
    async with saver.conn.execute("PRAGMA journal_mode") as cur:
        journal = (await cur.fetchone() or ("?",))[0]
    async with saver.conn.execute("PRAGMA synchronous") as cur:
        synchronous = (await cur.fetchone() or (0,))[0]
    return {"journal_mode": str(journal).lower(), "synchronous": int(synchronous)}


async def measure(args: ChildArgs) -> dict[str, Any]:
    async with AsyncSqliteSaver.from_conn_string(str(args.db)) as saver:
        graph = build_graph(saver)
        # Create the tables before timing, as Tether's and DBOS's start-up is not timed either.
        await saver.setup()

        async def run_one(i: int) -> None:
            config: RunnableConfig = {"configurable": {"thread_id": f"run-{i}"}}
            out = await graph.ainvoke({"x": i}, config, durability="sync")
            if out["x"] != i:
                raise RuntimeError(f"thread run-{i} returned a wrong result")

        elapsed, latencies = await drive(run_one, args.runs, args.in_flight)
        pragmas = await saver_pragmas(saver)
    persisted = scalar(args.db, "SELECT COUNT(*) FROM checkpoints")
    threads = scalar(args.db, "SELECT COUNT(DISTINCT thread_id) FROM checkpoints")
    return {
        "system": "langgraph",
        "versions": library_versions("langgraph", "langgraph-checkpoint-sqlite", "aiosqlite"),
        "pragmas": pragmas,
        "persisted_rows": persisted,
        "persisted_what": "checkpoints rows (one per superstep: input, __start__, 10 nodes)",
        "writes_rows": scalar(args.db, "SELECT COUNT(*) FROM writes"),
        "expected_rows": args.runs * STEPS,
        "persisted_ok": persisted >= args.runs * STEPS and threads == args.runs,
        **timing_fields(args, STEPS, elapsed, p50_ms(latencies)),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_child_args(argv, __doc__)
    emit(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
