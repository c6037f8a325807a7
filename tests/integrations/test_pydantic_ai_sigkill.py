"""SIGKILL of a process running a Pydantic AI agent on Tether, with the third model request in
flight: a new process finishes the run, the fake provider's log shows no committed request
sent again, and the tool log shows no committed tool call run again (I12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("pydantic_ai.models.openai")

from tests.integrations.pyai_crash_child import make_agent, make_runtime
from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall

HERE = Path(__file__).parent
pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_sigkill_mid_run_resumes_without_resending_a_committed_call_I12(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "rt.db", tmp_path / "tools.log"
    script = [
        FakeReply(tool_calls=(FakeToolCall("weather", {"city": "Oslo"}, id="c1"),)),
        FakeReply(tool_calls=(FakeToolCall("weather", {"city": "Rome"}, id="c2"),)),
        FakeReply("never read", delay_secs=60),  # in flight when the process dies
        FakeReply("Sunny in Oslo and Rome."),
    ]
    with FakeModelServer(script, api_key="test-key") as server:
        child = subprocess.Popen(
            [sys.executable, str(HERE / "pyai_crash_child.py"), str(db), str(log),
             server.openai_base_url],
            stdout=subprocess.PIPE, text=True, cwd=HERE.parent.parent,
            env={**os.environ, "PYTHONPATH": str(HERE.parent.parent)},
        )  # fmt: skip
        try:
            assert child.stdout is not None
            execution_id = child.stdout.readline().strip()
            with anyio.fail_after(30):  # another process: the server's log is what to watch
                while len(server.requests) < 3:
                    await anyio.sleep(0.01)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
        agent = make_agent(str(log), server.openai_base_url)
        async with make_runtime(str(db), agent) as rt:
            state = await rt.wait(execution_id, timeout=30)
            await check_replay(rt, execution_id)
        requests = server.requests
    assert state.status == "completed", state.error
    assert state.result["output"] == "Sunny in Oslo and Rome."
    assert log.read_text().splitlines() == ["weather Oslo", "weather Rome"]  # none ran twice
    assert len(requests) == 4
    # Only the request in flight at the kill was sent again, the same conversation.
    assert requests[2].messages_hash == requests[3].messages_hash
    assert len({r.messages_hash for r in requests}) == 3
