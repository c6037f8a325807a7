"""Durable memory on a real runtime: ``rt.memory`` (SQLite file, and Postgres when
TETHER_TEST_POSTGRES_URL names a server), the ``memory_write`` and ``memory_retrieval`` nodes
(bound at hand-out and journaled, scoped per user, ``supersedes`` winning), and a write applied
once through a SIGKILL of the engine right before or right after its row commits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid, WorkflowSyntaxError
from tether.runtime import Runtime as CoreRuntime
from tether.testing import check_replay

HERE = Path(__file__).parent
pytestmark = pytest.mark.anyio

FLOW = """
workflow: {id: remember, version: "1"}
nodes:
  remember: {type: memory_write, user: $user, subject: location, content: $city, next: recall}
  recall: {type: memory_retrieval, user: $user, topic: "where does she live", output_key: memory,
           next: end}
"""

LOOP = """
workflow: {id: diary, version: "1", state_schema: {n: {type: integer, default: 0}}}
nodes:
  note: {type: memory_write, user: u1, subject: "day {{ state.n }}", content: "wrote", next: count}
  count: {type: python_fn, module: builtins, function: abs, next: again}
  again:
    type: condition
    expression: "state.n < 3"
    if_true: note
    if_false: end
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_rt_memory_keeps_current_facts_per_user_within_a_budget(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}") as rt:
        pune, _ = await rt.memory.write(user="ana", subject="location", content="Pune")
        await rt.memory.write(user="ana", subject="location", content="Amsterdam")
        await rt.memory.write(user="ana", subject="pet", content="a cat named Miso")
        await rt.memory.write(user="bo", subject="location", content="Lima")
        again, written = await rt.memory.write(
            user="ana", subject="location", content="Pune", fact_id=pune.fact_id
        )
        ctx = await rt.memory.context_for(user="ana", topic="location", budget_tokens=400)
        tiny = await rt.memory.context_for(user="ana", topic="location", budget_tokens=5)
    assert (again, written) == (pune, False)  # the same id again writes nothing
    assert ctx.text == "location: Amsterdam\npet: a cat named Miso"
    assert tiny.text == "location: Amsterdam" and tiny.tokens <= 5
    assert "Lima" not in ctx.text and "Pune" not in ctx.text


async def test_rt_memory_on_postgres(postgres_url: str) -> None:
    async with Runtime(postgres_url) as rt:
        old, _ = await rt.memory.write(user="ana", subject="home", content="Pune")
        await rt.memory.write(
            user="ana", subject="city", content="Amsterdam", supersedes=old.fact_id
        )
        await rt.memory.write(user="bo", subject="home", content="Lima")
        facts = await rt.memory.facts("ana")
        ctx = await rt.memory.context_for(user="ana", topic="where is home", budget_tokens=400)
    assert [(f.subject, f.content) for f in facts] == [("city", "Amsterdam")]
    assert ctx.text == "city: Amsterdam"


async def test_memory_nodes_write_and_recall_journaled_and_scoped(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}") as rt:
        wf = rt.register(compile_yaml_text(FLOW, "remember.yaml"))
        first = await rt.start(wf, {"user": "ana", "city": "Pune"})
        await first.result()
        second = await rt.start(wf, {"user": "ana", "city": "Amsterdam"})
        recalled = (await second.result())["memory"]
        other = await rt.start(wf, {"user": "bo", "city": "Lima"})
        theirs = (await other.result())["memory"]
        journal = await rt.journal(second.id)
        await check_replay(rt, second.id)
        stored = await rt.memory.facts("ana", current=False)
    assert recalled["text"] == "location: Amsterdam"
    assert [f["content"] for f in recalled["facts"]] == ["Amsterdam"]
    assert recalled["facts"][0]["source_run"] == second.id
    assert theirs["text"] == "location: Lima"
    handed = [e.record for e in journal if e.type == "node_scheduled"]
    assert handed[0].input == {"user": "ana", "subject": "location", "content": "Amsterdam"}  # type: ignore[attr-defined]
    done = [e.record for e in journal if e.type == "node_completed"]
    assert done[0].facts == {"memory_fact_id": f"{second.id}/remember/1", "memory_written": True}  # type: ignore[attr-defined]
    assert [f.source_run for f in stored] == [first.id, second.id]


async def test_a_loop_back_to_a_memory_write_writes_a_new_fact_each_visit(tmp_path: Path) -> None:
    async def bump(n: int) -> int:
        return n + 1

    flow = LOOP.replace(
        "{type: python_fn, module: builtins, function: abs,",
        "{type: tool, tool: bump, input: {n: $n}, output_key: n,",
    )
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=[bump]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(flow, "diary.yaml")), {})
        await run.result()
        facts = await rt.memory.facts("u1", current=False)
    assert sorted(f.subject for f in facts) == ["day 0", "day 1", "day 2"]
    assert len({f.fact_id for f in facts}) == 3


async def test_a_memory_node_without_a_user_fails_at_hand_out(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}") as rt:
        wf = rt.register(compile_yaml_text(FLOW, "remember.yaml"))
        run = await rt.start(wf, {"user": "  ", "city": "Pune"})
        with pytest.raises(Exception, match="remember"):
            await run.result()
        failed = [e.record for e in await rt.journal(run.id) if e.type == "node_failed"]
        assert await rt.memory.facts("  ") == []
    assert "user must give a non-empty string" in failed[0].error  # type: ignore[attr-defined]


async def test_a_fact_the_table_refuses_fails_the_node_without_retries(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}") as rt:
        wf = rt.register(compile_yaml_text(FLOW, "remember.yaml"))
        run = await rt.start(wf, {"user": "ana", "city": "x" * 70_000})
        with pytest.raises(Exception, match="remember"):
            await run.result()
        journal = await rt.journal(run.id)
    failed = [e.record for e in journal if e.type == "node_failed"]
    assert len(failed) == 1 and "content must be a string of at most" in failed[0].error  # type: ignore[attr-defined]
    assert [e.type for e in journal].count("node_scheduled") == 1


async def test_memory_nodes_are_checked_at_compile_and_registration(tmp_path: Path) -> None:
    with pytest.raises(WorkflowSyntaxError, match="needs 'content'"):
        compile_yaml_text(FLOW.replace(", content: $city", ""), "bad.yaml")
    with pytest.raises(WorkflowSyntaxError, match="budget_tokens must not be negative"):
        compile_yaml_text(
            FLOW.replace("output_key: memory", "budget_tokens: -1, output_key: memory"), "bad.yaml"
        )
    # The core runtime has no memory: refused at registration, not stuck at run time.
    async with CoreRuntime(f"sqlite:///{tmp_path / 'rt.db'}", node_kinds=AgentKinds(env={})) as rt:
        with pytest.raises(WorkflowInvalid, match="needs durable memory"):
            rt.register(compile_yaml_text(FLOW, "remember.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
async def test_sigkill_around_a_memory_write_writes_it_once_and_loses_nothing_I4(
    tmp_path: Path, when: str
) -> None:
    db, execution_id = tmp_path / "rt.db", f"remember-{when}"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "memory_crash_child.py"), str(db), when, execution_id],
        cwd=HERE.parent.parent,
    )  # fmt: skip
    try:
        assert child.wait(timeout=60) == -signal.SIGKILL  # it killed itself at the write
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
    async with Runtime(f"sqlite:///{db}") as rt:
        state = await rt.wait(execution_id, timeout=30)
        await check_replay(rt, execution_id)
        facts = await rt.memory.facts("ana", current=False)
        journal = await rt.journal(execution_id)
    assert state.status == "completed"
    assert [(f.content, f.source_run) for f in facts] == [("Amsterdam", execution_id)]
    assert state.data["memory"]["text"] == "location: Amsterdam"
    done = [e.record for e in journal if e.type == "node_completed"]
    # After the row committed, the re-sent hand-out found it there and wrote nothing.
    assert done[0].facts["memory_written"] is (when == "before")  # type: ignore[attr-defined]
