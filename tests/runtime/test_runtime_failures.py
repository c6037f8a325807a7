"""Retries, failures, cancellation and timeouts, on the injected clock."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tether import (
    ExecutionCancelledError,
    ExecutionFailedError,
    NonRetryableError,
    Runtime,
    tool,
)
from tether.ir import compile_yaml_text
from tether.testing import VirtualClock, check_replay

pytestmark = pytest.mark.anyio

ONE_NODE = """
workflow: {{id: one, version: "1"}}
nodes:
  work: {{type: tool, tool: {tool}, retry: {retry}}}
"""


def one_node(tool_name: str, retry: str = "{max_attempts: 3, backoff_initial_secs: 0}") -> str:
    return ONE_NODE.format(tool=tool_name, retry=retry)


async def test_a_failing_tool_is_retried_then_succeeds(db_url: str) -> None:
    calls = 0

    @tool
    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("provider hiccup")
        return calls

    async with Runtime(db_url, tools=[flaky]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("flaky"), "f.yaml")))
        assert await run.result() == {"work": 3}
        entries = await rt.journal(run.id)
        failed = [e.record for e in entries if e.type == "node_failed"]
        assert [f.attempt for f in failed] == [1, 2]  # type: ignore[union-attr]
        assert "provider hiccup" in failed[0].error  # type: ignore[union-attr]
        await check_replay(rt, run.id)


async def test_backoff_waits_on_the_injected_clock(db_url: str) -> None:
    clock = VirtualClock()
    calls = 0

    @tool
    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("once")
        return calls

    retry = "{max_attempts: 2, backoff_initial_secs: 3600, backoff_max_secs: 7200, jitter: 0}"
    async with Runtime(db_url, tools=[flaky], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("flaky", retry), "f.yaml")))
        while clock.sleepers == 0:  # the retry is parked until an hour from now
            await anyio.sleep(0)
        assert calls == 1
        scheduled = [e.record for e in await rt.journal(run.id) if e.type == "node_scheduled"]
        assert scheduled[-1].not_before_ms == int(clock.now() * 1000) + 3_600_000  # type: ignore[union-attr]
        clock.advance(3600)
        assert await run.result() == {"work": 2}


async def test_exhausted_attempts_fail_the_execution(db_url: str) -> None:
    @tool
    async def broken() -> int:
        raise ValueError("bad data")

    async with Runtime(db_url, tools=[broken]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("broken"), "b.yaml")))
        with pytest.raises(ExecutionFailedError, match="node 'work' failed on attempt 3"):
            await run.result()
        assert (await rt.get_execution(run.id)).status == "failed"
        await check_replay(rt, run.id)


async def test_non_retryable_error_fails_at_once(db_url: str) -> None:
    calls = 0

    @tool
    async def refuse() -> int:
        nonlocal calls
        calls += 1
        raise NonRetryableError("account closed")

    async with Runtime(db_url, tools=[refuse]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("refuse"), "r.yaml")))
        with pytest.raises(ExecutionFailedError, match=r"not retryable.*account closed"):
            await run.result()
        assert calls == 1


async def test_cancel_stops_the_running_tool(db_url: str) -> None:
    entered, cancelled = anyio.Event(), anyio.Event()

    @tool
    async def forever() -> int:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return 0

    async with Runtime(db_url, tools=[forever]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("forever"), "c.yaml")))
        await entered.wait()
        assert await rt.cancel(run.id, reason="superseded") is True
        await cancelled.wait()
        with pytest.raises(ExecutionCancelledError, match="superseded"):
            await run.result()
        assert await rt.cancel(run.id) is False
        assert [e.type for e in await rt.journal(run.id)][-1] == "execution_cancelled"


async def test_node_timeout_counts_as_a_failed_attempt(db_url: str) -> None:
    # Several attempts, so the test sees the timeout counted: a retry with the next attempt
    # number while attempts are left, the run failed once they are spent.
    calls: dict[str, int] = {}

    @tool
    async def slow(label: str, hang_for: int) -> int:
        calls[label] = calls.get(label, 0) + 1
        if calls[label] <= hang_for:
            await anyio.sleep_forever()
        return calls[label]

    text = """
workflow: {id: t, version: "1", state_schema: {label: {type: string}, hang_for: {type: integer}}}
nodes:
  work: {type: tool, tool: slow, input: {label: $label, hang_for: $hang_for}, timeout: 0.01,
         retry: {max_attempts: 3, backoff_initial_secs: 0}}
"""
    async with Runtime(db_url, tools=[slow]) as rt:
        wf = rt.register(compile_yaml_text(text, "t.yaml"))

        recovers = await rt.start(wf, {"label": "recovers", "hang_for": 2})
        assert (await recovers.result())["work"] == 3
        failed = await _failed_attempts(rt, recovers.id)
        assert [f.attempt for f in failed] == [1, 2]
        assert all("timed out" in f.error for f in failed)
        await check_replay(rt, recovers.id)

        spent = await rt.start(wf, {"label": "spent", "hang_for": 99})
        with pytest.raises(ExecutionFailedError, match="timed out"):
            await spent.result()
        assert [f.attempt for f in await _failed_attempts(rt, spent.id)] == [1, 2, 3]
        assert calls == {"recovers": 3, "spent": 3}


async def _failed_attempts(rt: Runtime, execution_id: str) -> list[Any]:
    return [e.record for e in await rt.journal(execution_id) if e.type == "node_failed"]
