"""python_fn steps (the jamjet SDK's whole-state steps) under the embedded runtime.

A python_fn node without an ``output_key`` merges its dict output into state; with one, it
stores it like a tool. A step whose function the engine does not have waits on the ``general``
queue for a remote worker: the in-process pool never takes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tether import Runtime, tool
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.runtime.internals import runtime_internals
from tether.testing import check_replay

pytestmark = pytest.mark.anyio


@tool
def grow(n: int, trail: list[str]) -> dict[str, Any]:
    return {"n": n + 1, "trail": [*trail, "grow"]}


MODULE = grow.fn.__module__

FLOW = f"""
workflow: {{id: fn, version: "1", start: merge_step}}
nodes:
  merge_step: {{type: python_fn, module: {MODULE}, function: grow, next: keyed_step}}
  keyed_step:
    type: python_fn
    module: {MODULE}
    function: grow
    output_key: grown
    next: end
"""

REMOTE = """
workflow: {id: remote, version: "1"}
nodes:
  step: {type: python_fn, module: elsewhere, function: step}
"""


async def test_a_whole_state_step_merges_its_output_and_a_keyed_one_stores_it_I2(
    tmp_path: Path,
) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'fn.db'}", tools=[grow]) as rt:
        run = await rt.start(compile_yaml_text(FLOW, "fn.yaml"), {"n": 1, "trail": []})
        state = await run.result()
        assert state["n"] == 2 and state["trail"] == ["grow"]
        assert state["grown"] == {"n": 3, "trail": ["grow", "grow"]}
        await check_replay(rt, run.id)


async def test_a_step_the_engine_has_no_function_for_waits_for_a_remote_worker(
    tmp_path: Path,
) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'remote.db'}", tools=[grow]) as rt:
        run = await rt.start(compile_yaml_text(REMOTE, "remote.yaml"), {})
        (item,) = await rt.store.list_work_items(execution_id=run.id)
        assert (item.queue, item.status) == ("general", "pending")
        assert (await rt.state(run.id)).status == "running"
        # The pool's ledger entry never serves the queue (so no grant can reach it).
        pool = runtime_internals(rt).services.ledger.get("local")
        assert pool is not None and not pool.serves("general") and pool.serves("python_tool")


@tool
def numbered() -> dict[int, str]:
    return {1: "one"}


async def test_a_whole_state_step_with_non_string_keys_fails_its_node_I2(tmp_path: Path) -> None:
    flow = f"""
workflow: {{id: keys, version: "1"}}
nodes:
  step: {{type: python_fn, module: {MODULE}, function: numbered}}
"""
    async with Runtime(f"sqlite:///{tmp_path / 'k.db'}", tools=[numbered]) as rt:
        run = await rt.start(compile_yaml_text(flow, "keys.yaml"), {})
        state = await rt.wait(run.id)
        assert state.status == "failed" and "string keys" in (state.error or "")
        await check_replay(rt, run.id)


async def test_a_remote_step_may_not_share_a_queue_with_local_work(tmp_path: Path) -> None:
    flow = f"""
workflow: {{id: clash, version: "1", start: mine}}
nodes:
  mine: {{type: python_fn, module: {MODULE}, function: grow, next: theirs}}
  theirs: {{type: python_fn, module: elsewhere, function: f, labels: {{queue: python_tool}}}}
"""
    async with Runtime(f"sqlite:///{tmp_path / 'c.db'}", tools=[grow]) as rt:
        with pytest.raises(WorkflowInvalid, match="python_tool"):
            rt.register(compile_yaml_text(flow, "clash.yaml"))


async def test_a_remote_step_may_not_take_the_default_tool_queue(tmp_path: Path) -> None:
    flow = """
workflow: {id: alone, version: "1"}
nodes:
  theirs: {type: python_fn, module: elsewhere, function: f, labels: {queue: python_tool}}
"""
    async with Runtime(f"sqlite:///{tmp_path / 'd.db'}", tools=[grow]) as rt:
        with pytest.raises(WorkflowInvalid, match="default queue"):
            rt.register(compile_yaml_text(flow, "alone.yaml"))


@tool
def call_api(api_key: str) -> str:
    return "called"


SECRET_CALL = """
workflow: {id: secret_call, version: "1"}
nodes:
  call: {type: tool, tool: call_api, labels: {queue: general}}
"""


async def test_no_queue_is_remote_in_one_workflow_and_local_in_another_I14(
    tmp_path: Path,
) -> None:
    """A tool step on the queue another workflow's remote-only steps wait on would be handed
    to a remote worker, its input (an API key) and the right to commit its output with it."""
    remote, secret = compile_yaml_text(REMOTE, "r.yaml"), compile_yaml_text(SECRET_CALL, "s.yaml")
    for first, second, said in ((remote, secret, "remote-only"), (secret, remote, "runs")):
        async with Runtime(
            f"sqlite:///{tmp_path / f'{first.workflow_id}.db'}", tools=[call_api]
        ) as rt:
            rt.register(first)
            with pytest.raises(WorkflowInvalid, match=f"queue 'general'.*{said}"):
                rt.register(second)
    # After a restart the loaded workflow is known again before anything is registered.
    async with Runtime(f"sqlite:///{tmp_path / 'again.db'}", tools=[call_api]) as rt:
        await rt.start(remote, {})
    async with Runtime(f"sqlite:///{tmp_path / 'again.db'}", tools=[call_api]) as rt:
        with pytest.raises(WorkflowInvalid, match="queue 'general'"):
            rt.register(secret)


async def test_a_stored_workflow_loaded_later_cannot_take_a_queue_the_other_way_I14(
    tmp_path: Path,
) -> None:
    """After a restart only unfinished runs' workflows load: one stored earlier with remote
    steps on a queue must not, when it loads later, turn that queue remote under a tool that
    was registered meanwhile (its steps would wait for, and go to, a remote worker)."""
    url = f"sqlite:///{tmp_path / 'later.db'}"
    remote, secret = compile_yaml_text(REMOTE, "r.yaml"), compile_yaml_text(SECRET_CALL, "s.yaml")
    async with Runtime(url, tools=[call_api]) as rt:
        run = await rt.start(remote, {})
        await rt.cancel(run.id, "done with it")
    async with Runtime(url, tools=[call_api]) as rt:
        rt.register(secret)  # nothing loaded uses 'general' remotely: accepted
        with pytest.raises(WorkflowInvalid, match="queue 'general'"):
            await rt.start("remote@1", {})
        done = await rt.start(secret, {"api_key": "k"})
        await done.result(timeout=10)  # run by the in-process pool, not left to a worker
        assert (await rt.state(done.id)).status == "completed"
