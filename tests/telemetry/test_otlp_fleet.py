"""End to end over OTLP/HTTP: an engine and a real ``tether worker`` process both export to a
receiver on loopback, and the spans form one tree: the execution, its node attempts, and the
worker's span of each step inside the attempt that the grant's traceparent named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tether import Runtime
from tether.fleet import ZmqFleet
from tether.ir import compile_yaml_text
from tether.telemetry.follower import start_tracing
from tether.telemetry.otlp import otlp_processor_from_env

from .otel_tools import inc
from .otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.anyio
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

FLOW = compile_yaml_text(
    """
workflow: {id: far, version: "2", start: a, state_schema: {n: {type: integer, default: 0}}}
nodes:
  a: {type: tool, tool: inc, output_key: n, next: b}
  b: {type: tool, tool: inc, output_key: n, next: end}
"""
)


async def test_a_run_across_a_fleet_worker_is_one_span_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        processor = otlp_processor_from_env(os.environ)
        assert processor is not None
        fleet = ZmqFleet("tcp://127.0.0.1:0", heartbeat_interval_ms=250)
        async with (
            Runtime(
                f"sqlite:///{tmp_path / 'rt.db'}", tools=[inc], transports=[fleet],
                max_concurrency=0,
            ) as rt,
            anyio.create_task_group() as tg,
        ):  # fmt: skip
            tracing = await start_tracing(rt, processor, tg)
            env = {
                **os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100",
                "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
            }  # fmt: skip
            worker = subprocess.Popen(
                [sys.executable, "-m", "tether.cli", "worker", "--engine", fleet.endpoint,
                 "--modules", "otel_tools", "--worker-id", "w-otel"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                run = await rt.start(FLOW, {"n": 0})
                with anyio.fail_after(30):
                    assert await run.result() == {"n": 2}
                worker.send_signal(signal.SIGTERM)  # drains, then flushes its spans
                _, err = await anyio.to_thread.run_sync(lambda: worker.communicate(timeout=30))
                assert worker.returncode == 0, err
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.communicate()
            await tracing.aclose()  # the engine's spans are exported
    spans = receiver.spans
    engine = [s for s in spans if s["service"] == "tether-engine"]
    workers = [s for s in spans if s["service"] == "tether-worker"]
    [execution] = [s for s in engine if s["name"] == "execution far@2"]
    assert execution["parent_span_id"] == ""
    attempts = {
        s["attributes"]["tether.node_id"]: s for s in engine if s["name"].startswith("node ")
    }
    assert set(attempts) == {"a", "b"}
    assert len({s["trace_id"] for s in spans}) == 1  # one trace, engine and worker alike
    for node, attempt in attempts.items():
        assert attempt["parent_span_id"] == execution["span_id"]
        assert attempt["attributes"]["tether.worker_id"] == "w-otel"
        assert attempt["attributes"]["tether.workflow_version"] == "2"
        [ran] = [w for w in workers if w["attributes"]["tether.node_id"] == node]
        assert ran["name"] == "run inc"
        assert ran["parent_span_id"] == attempt["span_id"]  # inside the engine's attempt
        assert ran["attributes"]["tether.worker_id"] == "w-otel"
        assert attempt["start"] <= ran["start"] and ran["end"] <= attempt["end"] + 50_000_000
