"""Async tools run in their execution actor's own turn (no hop through the pool's tasks):
timeouts, failures and cancels behave as on the pool, synchronous tools stay off the event
loop, and ``inline=False`` keeps a tool on the pool (issue 14)."""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

from tether import Runtime, tool
from tether.ir import compile_yaml_text
from tether.runtime.records import NodeCompleted, NodeFailed
from tether.testing import check_replay

pytestmark = pytest.mark.anyio

ONE = """
workflow: {{id: "one_{tool}", version: "1"}}
nodes:
  work: {{type: tool, tool: {tool}, input: {{k: 1}}, {extra} next: end}}
"""


def one_step(tool_name: str, extra: str = "") -> object:
    return compile_yaml_text(ONE.format(tool=tool_name, extra=extra), "one.yaml")


def ran_in() -> str:
    task = asyncio.current_task()
    if task is None:
        return "thread"
    return "inline" if task.get_name().startswith("tether actor ") else "pool"


async def test_an_async_tool_runs_in_its_actors_turn_and_a_marked_one_on_the_pool(
    db_url: str,
) -> None:
    where: dict[str, str] = {}

    @tool
    async def quick(k: int) -> int:
        where["quick"] = ran_in()
        return k

    @tool(inline=False)
    async def kept_apart(k: int) -> int:
        where["kept_apart"] = ran_in()
        return k

    async with Runtime(db_url, tools=[quick, kept_apart]) as rt:
        for name in ("quick", "kept_apart"):
            run = await rt.start(rt.register(one_step(name)), {})  # type: ignore[arg-type]
            assert await run.result() == {"work": 1}
            await check_replay(rt, run.id)
    assert where == {"quick": "inline", "kept_apart": "pool"}


async def test_a_synchronous_tool_runs_in_a_worker_thread(db_url: str) -> None:
    threads: list[bool] = []

    @tool
    def blocking(k: int) -> int:
        threads.append(threading.current_thread() is threading.main_thread())
        return k

    async with Runtime(db_url, tools=[blocking]) as rt:
        run = await rt.start(rt.register(one_step("blocking")), {})  # type: ignore[arg-type]
        assert await run.result() == {"work": 1}
    assert threads == [False]


async def test_an_inline_tool_that_raises_fails_its_node_as_on_the_pool_I11(db_url: str) -> None:
    async def boom(k: int) -> int:
        raise ValueError(f"bad {k}")

    inline, pooled = tool(name="inline_boom")(boom), tool(name="pooled_boom", inline=False)(boom)
    failures = []
    async with Runtime(db_url, tools=[inline, pooled]) as rt:
        for name in ("inline_boom", "pooled_boom"):
            wf = rt.register(one_step(name, "retry: {max_attempts: 1},"))  # type: ignore[arg-type]
            run = await rt.start(wf, {})
            state = await rt.wait(run.id, timeout=10)
            assert state.status == "failed"
            [failed] = [e.record for e in await rt.journal(run.id) if e.type == "node_failed"]
            assert isinstance(failed, NodeFailed)
            failures.append((failed.error, failed.error_type, failed.retryable, failed.attempt))
            assert "ValueError: bad 1" in failed.traceback
    assert failures[0] == failures[1] == ("ValueError: bad 1", "ValueError", True, 1)


async def test_an_inline_tool_that_times_out_fails_its_attempt_and_is_retried(
    db_url: str,
) -> None:
    attempts: list[str] = []

    @tool
    async def slow_once(k: int) -> int:
        attempts.append(ran_in())
        if len(attempts) == 1:
            await anyio.sleep_forever()  # stopped by the node's timeout
        return k

    extra = "timeout: 0.05, retry: {max_attempts: 2, backoff_initial_secs: 0},"
    async with Runtime(db_url, tools=[slow_once]) as rt:
        run = await rt.start(rt.register(one_step("slow_once", extra)), {})  # type: ignore[arg-type]
        assert await run.result() == {"work": 1}
        journal = await rt.journal(run.id)
        await check_replay(rt, run.id)
    [failed] = [e.record for e in journal if e.type == "node_failed"]
    assert isinstance(failed, NodeFailed) and failed.error_type == "TimeoutError"
    assert attempts == ["inline", "inline"]


async def test_a_cancel_interrupts_an_inline_tool_and_frees_its_slot(db_url: str) -> None:
    entered, interrupted = anyio.Event(), anyio.Event()

    @tool
    async def hangs(k: int) -> int:
        entered.set()
        try:
            await anyio.sleep_forever()
        except BaseException:
            interrupted.set()
            raise
        return k

    @tool
    async def quick(k: int) -> int:
        return k

    # One slot: the second run can only run once the cancelled tool gave its slot back.
    async with Runtime(db_url, tools=[hangs, quick], max_concurrency=1) as rt:
        run = await rt.start(rt.register(one_step("hangs")), {})  # type: ignore[arg-type]
        with anyio.fail_after(10):
            await entered.wait()
            assert await rt.cancel(run.id, "no longer needed")
            await interrupted.wait()
            state = await rt.wait(run.id)
            other = await rt.start(rt.register(one_step("quick")), {})  # type: ignore[arg-type]
            assert await other.result() == {"work": 1}
        journal = await rt.journal(run.id)
        await check_replay(rt, run.id)
    assert state.status == "cancelled"
    assert not [e for e in journal if isinstance(e.record, NodeCompleted)]
    assert journal[-1].type == "execution_cancelled"


async def test_an_event_sent_while_an_inline_tool_runs_is_taken_after_it(db_url: str) -> None:
    flow = """
workflow: {id: step_then_wait, version: "1"}
nodes:
  work: {type: tool, tool: gated, input: {k: 1}, next: wait}
  wait: {type: wait, event: go, output_key: got, next: end}
"""
    entered, release = anyio.Event(), anyio.Event()

    @tool
    async def gated(k: int) -> int:
        entered.set()
        await release.wait()
        return k

    async with Runtime(db_url, tools=[gated]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(flow, "f.yaml")), {})
        with anyio.fail_after(10):
            await entered.wait()
            async with anyio.create_task_group() as tg:
                tg.start_soon(rt.send_event, run.id, "go", {"n": 1})
                await anyio.wait_all_tasks_blocked()
                release.set()
            result = await run.result()
        await check_replay(rt, run.id)
    assert result["work"] == 1 and result["got"]["payload"] == {"n": 1}


async def test_a_chain_runs_its_next_inline_step_only_when_nothing_waits_before_it(
    db_url: str,
) -> None:
    """One message runs a chain's inline steps one after another (no message to itself per
    step), but a message that arrived meanwhile (here an event) is served first."""
    flow = """
workflow: {id: three_steps, version: "1"}
nodes:
  a: {type: tool, tool: step, input: {k: 1}, next: b}
  b: {type: tool, tool: step, input: {k: 2}, next: c}
  c: {type: tool, tool: step, input: {k: 3}, next: w}
  w: {type: wait, event: note, output_key: got, next: end}
"""
    ran: list[tuple[int, str]] = []
    entered, release = anyio.Event(), anyio.Event()

    @tool
    async def step(k: int) -> int:
        ran.append((k, ran_in()))
        if k == 2 and not release.is_set():
            entered.set()
            await release.wait()
        return k

    async with Runtime(db_url, tools=[step]) as rt:
        wf = rt.register(compile_yaml_text(flow, "f.yaml"))
        run = await rt.start(wf, {})
        with anyio.fail_after(10):
            await entered.wait()
            async with anyio.create_task_group() as tg:
                tg.start_soon(rt.send_event, run.id, "note", {"n": 1})
                await anyio.wait_all_tasks_blocked()  # the event waits in the mailbox
                release.set()
            result = await run.result()
        journal = [(e.type, getattr(e.record, "node_id", None)) for e in await rt.journal(run.id)]
        await check_replay(rt, run.id)
    assert ran == [(1, "inline"), (2, "inline"), (3, "inline")]
    assert result["c"] == 3 and result["got"]["payload"] == {"n": 1}
    # c was scheduled by b's turn, but it ran only after the event that came meanwhile.
    event_at = journal.index(("event_received", None))
    c_done = journal.index(("node_completed", "c"))
    assert journal.index(("node_scheduled", "c")) < event_at < c_done
