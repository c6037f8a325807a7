"""A worker in a real child process, SIGKILLed: the broker reports it gone after the TTL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from fleet_helpers import Recorder

from tether.fleet import Broker, Heartbeat

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent


async def test_sigkilled_worker_process_is_reported_gone_after_the_ttl() -> None:
    rec = Recorder()
    async with Broker(
        "tcp://127.0.0.1:0", rec, engine_id="eng", heartbeat_interval_ms=50, lease_ttl_ms=300
    ) as b:
        child = subprocess.Popen(
            [sys.executable, str(HERE / "fleet_worker_child.py"), b.endpoint, "child"],
            stdout=subprocess.PIPE,
        )
        try:
            peer = await rec.wait_until(lambda: rec.joined_peer("child"), timeout=15)
            assert peer.pid == child.pid
            # Alive means heartbeating: wait for a few, so the report cannot come from startup.
            await rec.wait_until(
                lambda: sum(isinstance(m, Heartbeat) for _, m in rec.messages) >= 3
            )
            os.kill(child.pid, signal.SIGKILL)
            killed_at = anyio.current_time()
            reason = await rec.wait_until(lambda: rec.left_reason("child"), timeout=5)
            assert reason.startswith("silent for ")
            # Its last heartbeat came at most one interval before the kill.
            assert anyio.current_time() - killed_at >= 0.3 - 0.05 - 0.02
            assert b.peer_for("child") is None
        finally:
            child.kill()
            child.wait()
            assert child.stdout is not None
            child.stdout.close()
