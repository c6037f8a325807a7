"""SIGKILL of the engine in the middle of a strategy agent (an answer and a failing
reflection committed, the revision in flight): a new process finishes the run through the
same nodes, and the fake provider's log shows no committed call sent again (I12)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from agent_crash_child import make_runtime
from strategy_flows import strategy_flow

from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply

HERE = Path(__file__).parent
pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_sigkill_mid_strategy_resumes_without_resending_a_committed_call_I12(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "rt.db", tmp_path / "tools.log"
    script = [
        FakeReply("An answer."),
        FakeReply(json.dumps({"score": 0.5, "passed": False, "gaps": "depth"})),
        FakeReply("never read", delay_secs=60),  # the revision, in flight when the engine dies
        FakeReply("A deeper answer."),
        FakeReply(json.dumps({"score": 0.9, "passed": True})),
        FakeReply("Tea is a drink."),
    ]
    with FakeModelServer(script, api_key="test-key") as server:
        child = subprocess.Popen(
            [sys.executable, str(HERE / "strategy_crash_child.py"), str(db), str(log),
             server.openai_base_url],
            stdout=subprocess.PIPE, text=True, cwd=HERE.parent.parent,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            execution_id = child.stdout.readline().strip()
            with anyio.fail_after(30):
                while len(server.requests) < 3:
                    await anyio.sleep(0.01)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
        async with make_runtime(str(db), str(log), server.openai_base_url) as rt:
            rt.register(strategy_flow("reflection", max_iterations=3))
            state = await rt.wait(execution_id, timeout=30)
            await check_replay(rt, execution_id)
            journal = [e.record for e in await rt.journal(execution_id)]
        requests = server.requests
    assert state.status == "completed", state.error
    assert state.data["result"] == "Tea is a drink."
    assert [r.node_id for r in journal if r.type == "node_completed"] == [
        "__execute__", "__reflect_0__", "__reflect_gate_0__", "__revise_0__", "__reflect_1__",
        "__reflect_gate_1__", "__finalize__", "done",
    ]  # fmt: skip
    assert len(requests) == 6
    # Only the call in flight at the kill was sent again (the same conversation).
    assert server.sent_twice() == [requests[2].messages_hash]
    assert requests[2].messages_hash == requests[3].messages_hash
