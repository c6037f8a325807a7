"""Model and agent tool calls run on a `tether worker` process like any tool: the engine has
no in-process pool (max_concurrency=0), the worker reads the provider's key and endpoint from
its own environment, and the journal says which worker made each call (I11, I12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.fleet import ZmqFleet
from tether.ir import compile_yaml_text
from tether.testing.fake_models import FakeModelServer, FakeReply
from tether.testing.loopback import free_loopback_port as _free_port

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]

FLOW = """
workflow: {id: remote-model, version: "1"}
models:
  fast: {provider: openai, model: gpt-4o-mini}
nodes:
  plan: {type: model, model: fast, prompt: "Plan for {{ state.q }}", output_key: plan, next: end}
"""


async def test_a_model_call_runs_on_a_fleet_worker_with_the_workers_keys_I11(
    tmp_path: Path,
) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    with FakeModelServer([FakeReply("1. tea")], api_key="worker-key") as server:
        # The engine has no key at all: only the worker can call the provider.
        kinds = AgentKinds(env={})
        async with Runtime(
            f"sqlite:///{tmp_path / 'rt.db'}", node_kinds=kinds, transports=[ZmqFleet(endpoint)],
            max_concurrency=0,
        ) as rt:  # fmt: skip
            worker = subprocess.Popen(
                [sys.executable, "-m", "tether.cli", "worker", "--engine", endpoint,
                 "--worker-id", "gpu-1"],
                env={**os.environ, **server.env("worker-key"), "PYTHONPATH": str(ROOT)},
                stderr=(tmp_path / "worker.log").open("wb"),
            )  # fmt: skip
            try:
                run = await rt.start(rt.register(compile_yaml_text(FLOW, "f.yaml")), {"q": "x"})
                with anyio.fail_after(60):
                    assert (await run.result())["plan"] == "1. tea"
                journal = await rt.journal(run.id)
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    [done] = [e.record for e in journal if e.type == "node_completed"]
    assert done.worker_id == "gpu-1"  # type: ignore[union-attr]
    assert done.facts["gen_ai_model"] == "gpt-4o-mini"  # type: ignore[union-attr]
    assert len(server.requests) == 1
