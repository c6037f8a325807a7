"""The embedded runtime on Postgres: a branch, a parallel fan-out and a join run to the end; a
runtime stopped mid-run resumes on the same schema; a process SIGKILLed mid-step is finished
by a new one, with nothing committed applied twice (I1, I3, I4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from crash_child import CHAIN, make_step
from tools import add_one, double, label

from tether import Runtime, tool
from tether.ir import compile_yaml_text
from tether.testing import check_replay

pytest.importorskip("psycopg", reason="the Postgres driver: pip install -e '.[postgres]'")

pytestmark = pytest.mark.anyio
HERE = Path(__file__).resolve().parent


async def test_branch_parallel_and_join_on_postgres(postgres_url: str, examples: Path) -> None:
    async with Runtime(postgres_url, tools=[add_one, double, label]) as rt:
        wf = rt.register_yaml(examples / "branching.yaml")
        for n, tag, incremented in ((0, "small", 2), (5, "big", 6)):
            run = await rt.start(wf, input={"n": n})
            assert await run.result() == tag
            state = await run.state()
            assert state.data["incremented"] == incremented
            await check_replay(rt, run.id)
            types = [e.type for e in await rt.journal(run.id)]
            assert (types[0], types[-1]) == ("execution_started", "execution_completed")
        listed = await rt.list_executions(status="completed")
        assert len(listed) == 2


def _gated(gate_at: int, entered: anyio.Event, calls: Counter[int]):  # type: ignore[no-untyped-def]
    @tool(name="step")
    async def step(k: int, log: str) -> int:
        calls[k] += 1
        if k == gate_at:
            entered.set()
            await anyio.sleep_forever()
        return k

    return step


async def test_a_stopped_runtime_resumes_on_the_same_schema_I2_I3(postgres_url: str) -> None:
    calls: Counter[int] = Counter()
    entered = anyio.Event()
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    async with Runtime(postgres_url, tools=[_gated(3, entered, calls)]) as rt:
        run = await rt.start(rt.register(wf), {"log": "-"})
        await entered.wait()
    async with Runtime(postgres_url, tools=[_gated(0, anyio.Event(), calls)]) as rt:
        state = await rt.wait(run.id)
        assert (state.status, state.data["s4"]) == ("completed", 4)
        await check_replay(rt, run.id)
    assert calls == Counter({1: 1, 2: 1, 3: 2, 4: 1})


@pytest.mark.slow
async def test_sigkill_mid_run_then_a_new_process_finishes_it_I1_I3(
    tmp_path: Path, postgres_url: str
) -> None:
    log = tmp_path / "effects.log"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "crash_child.py"), postgres_url, str(log)],
        stdout=subprocess.PIPE, text=True, cwd=HERE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        with anyio.fail_after(60):  # the child says when step 3 has started: no polling
            execution_id = (await anyio.to_thread.run_sync(child.stdout.readline)).strip()
            blocked = await anyio.to_thread.run_sync(child.stdout.readline)
        assert blocked.strip() == "blocked 3"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    # The killed engine's writer lock goes with its connection; the new one waits for that.
    async with Runtime(postgres_url, tools=[make_step(block_at=None)]) as rt:
        state = await rt.wait(execution_id, timeout=30)
        await check_replay(rt, execution_id)
        entries = await rt.journal(execution_id)
    assert state.status == "completed"
    lines = log.read_text().splitlines()
    done = Counter(line.split()[1] for line in lines if line.startswith("done"))
    started = Counter(line.split()[1] for line in lines if line.startswith("start"))
    assert done == Counter({"1": 1, "2": 1, "3": 1, "4": 1})  # committed steps never re-ran
    assert started["3"] == 2  # the step in flight at the kill ran again
    completed = Counter(
        e.record.node_id  # type: ignore[union-attr]
        for e in entries
        if e.type == "node_completed"
    )
    assert completed == Counter({"s1": 1, "s2": 1, "s3": 1, "s4": 1})
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))  # no gap, no repeat
