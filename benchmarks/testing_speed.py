"""How long the testing plugin's property tests take: a 20-node workflow's crash-point run
(every journal position, crashed and recovered) and 200 agent runs against the fake model.

    python -m benchmarks testing [--nodes 20] [--agent-examples 200]
    python -m benchmarks testing --quick          # a small size (the smoke test's)

The crash points run as ``@pytest.mark.tether_crash_points`` runs them (the same loop, the
same checks at each position), on a SQLite file per position (durability ``normal``) and on
memory. The agent runs are hypothesis examples as ``given_agent_runs`` draws and checks them
(scripts from ``model_answers`` with the default rates of malformed answers, 429s, 500s and
timeouts, a crash position drawn too), against one fake provider. Printed, not asserted (the
aims: under 2 s and under 30 s).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.machine import banner, describe
from tether import tool
from tether.ir import compile_yaml_text
from tether.ir.types import Workflow
from tether.testing.agent_given import AgentBench
from tether.testing.crash_points import run_crash_points
from tether.testing.fake_models.server import Scripted
from tether.testing.model_answers import model_answers
from tether.testing.options import Storage, TetherOptions
from tether.testing.runtime_under_test import RuntimeUnderTest


@tool
async def add_one(n: int) -> int:
    return n + 1


@tool
async def search(query: str) -> list[str]:
    """Search the catalogue."""
    return [query]


AGENT = """
workflow: {id: shop, version: "1"}
models:
  smart: {provider: openai, model: gpt-4o-mini}
nodes:
  assist:
    type: agent
    model: smart
    prompt: "{{ state.question }}"
    tools: [search]
    budget: {max_cost_usd: 0.01, max_iterations: 5}
    output_key: answer
"""


def chain(nodes: int) -> Workflow:
    lines = [f"workflow: {{id: chain{nodes}, version: '1', state_schema: {{n: integer}}}}"]
    lines.append("nodes:")
    for i in range(nodes):
        after = f", next: s{i + 1}" if i + 1 < nodes else ""
        lines.append(f"  s{i}: {{type: tool, tool: add_one, output_key: n{after}}}")
    return compile_yaml_text("\n".join(lines) + "\n", "chain.yaml")


async def crash_points(nodes: int, storage: Storage, tmp: Path) -> dict[str, Any]:
    wf = chain(nodes)
    options = TetherOptions(tools=(add_one,), storage=storage)
    started = time.perf_counter()
    async with RuntimeUnderTest(options, tmp) as rt:

        async def body() -> None:
            run = await rt.start(wf, {"n": 0})
            assert (await run.result())["n"] == nodes

        report = await run_crash_points(body, rt)
    secs = time.perf_counter() - started
    return {"nodes": nodes, "storage": storage, "positions": report.positions,
            "crashed": report.crashed, "seconds": secs}  # fmt: skip


def agent_examples(examples: int, tmp: Path) -> dict[str, Any]:
    """``examples`` hypothesis examples, each an agent run checked as given_agent_runs does."""
    wf = compile_yaml_text(AGENT, "agent.yaml")
    bench = AgentBench(TetherOptions(tools=(search,), storage="sqlite"), wf)
    statuses: dict[str, int] = {}
    answers = model_answers(tools=[search, "delete_db"], malformed=0.05, rate_limited=0.1)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(script=answers, crash_at=st.none() | st.integers(0, 40))
    def one(script: list[Scripted], crash_at: int | None) -> None:
        run = anyio.from_thread.run(bench.run, script, crash_at, {"question": "q"}, tmp)
        assert not run.problems, run.problems
        statuses[run.status] = statuses.get(run.status, 0) + 1

    async def in_a_thread() -> None:
        await anyio.to_thread.run_sync(one)  # hypothesis drives; the runs use this loop

    started = time.perf_counter()
    try:
        anyio.run(in_a_thread)
    finally:
        bench.close()
    return {"examples": sum(statuses.values()), "statuses": statuses,
            "seconds": time.perf_counter() - started}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--agent-examples", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="5 nodes, 20 agent examples")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.agent_examples = 5, 20
    # Each crash point kills a runtime on purpose: its actors' failure warnings (with the
    # simulated crash's traceback) would bury the figures.
    logging.getLogger("tether").setLevel(logging.ERROR)
    machine = describe()
    print(f"testing: the plugin's property tests · {banner(machine)}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for storage in ("sqlite", "memory"):
            where = Path(tmp) / storage
            where.mkdir()
            r = anyio.run(crash_points, args.nodes, storage, where)
            results.append(r)
            print(
                f"  crash points, {r['nodes']}-node chain on {storage}: {r['positions']} "
                f"positions ({r['crashed']} crashed) + the uncut run in {r['seconds']:.2f} s "
                "(aim: under 2 s)"
            )
        agents = Path(tmp) / "agents"
        agents.mkdir()
        a = agent_examples(args.agent_examples, agents)
        print(
            f"  agent property: {a['examples']} examples against the fake model in "
            f"{a['seconds']:.1f} s (aim: under 30 s); ended {a['statuses']}"
        )
    return {"scenario": "testing", "machine": machine, "crash_points": results, "agents": a}


if __name__ == "__main__":
    main()
