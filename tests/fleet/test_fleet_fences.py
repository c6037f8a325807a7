"""A worker that names its live lease with the wrong fence is refused by the engine (I5).

The store refuses a stale fence, but the scheduler builds a worker's outcome from the lease it
holds, with that lease's fence: a report whose fence it did not check would be journaled as
the current lease's outcome. Here the one worker holding the lease sends the wrong fence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from tether import Runtime, tool
from tether.fleet import (
    Ack,
    EngineConnection,
    EngineMessage,
    Grant,
    Heartbeat,
    HeartbeatAck,
    LeaseRef,
    RateLimited,
    Reconnected,
    Result,
)
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text
from tether.testing import check_replay

pytestmark = pytest.mark.anyio
M = TypeVar("M")


@tool
async def work(n: int) -> int:
    return n  # never runs in the engine: it has no in-process workers


ONE = """
workflow: {id: one, version: "1", start: step, state_schema: {n: {type: integer}}}
nodes:
  step: {type: tool, tool: work, input: {n: $n}, output_key: n, next: end,
         retry: {max_attempts: 3, backoff_initial_secs: 0}}
"""


async def next_of(messages: AsyncIterator[EngineMessage | Reconnected], kind: type[M]) -> M:
    with anyio.fail_after(10):
        async for msg in messages:
            if isinstance(msg, kind):
                return msg
    raise AssertionError(f"the connection closed before a {kind.__name__}")


async def test_wrong_fences_on_a_live_lease_are_refused_I5(tmp_path: Path) -> None:
    fleet = ZmqFleet("tcp://127.0.0.1:0")
    async with Runtime(
        f"sqlite:///{tmp_path / 'e.db'}", tools=[work], transports=[fleet], max_concurrency=0
    ) as rt:
        run = await rt.start(rt.register(compile_yaml_text(ONE, "one.yaml")), {"n": 1})
        async with EngineConnection(
            fleet.endpoint, worker_id="w1", queues=["python_tool"], capacity=1, tools=["work"]
        ) as conn:
            messages = conn.messages()
            grant = await next_of(messages, Grant)
            wid = grant.work_item_id
            wrong = [grant.fence + 1, *([grant.fence - 1] if grant.fence > 0 else [])]
            for fence in wrong:
                await conn.send(Heartbeat(leases=[LeaseRef(wid, fence)]))
                told = await next_of(messages, HeartbeatAck)
                assert told.expired == [LeaseRef(wid, fence)]
                await conn.send(RateLimited(wid, fence, retry_after_secs=1.0, error="429"))
                await conn.send(Result(wid, fence, ok=True, output=666))
                for _ in range(2):
                    refused = await next_of(messages, Ack)
                    assert (refused.work_item_id, refused.fence) == (wid, fence)
                    assert not refused.accepted
                    assert f"fence {fence} is stale" in refused.reason, refused.reason
            # The lease is untouched: its holder finishes it with the right fence.
            await conn.send(Heartbeat(leases=[LeaseRef(wid, grant.fence)]))
            await conn.send(Result(wid, grant.fence, ok=True, output=7))
            ack = await next_of(messages, Ack)
            assert (ack.fence, ack.accepted) == (grant.fence, True), ack
        assert await run.result(timeout=10) == {"n": 7}
        types = [e.type for e in await rt.journal(run.id)]
        assert "node_parked" not in types and types.count("node_completed") == 1
        await check_replay(rt, run.id)
