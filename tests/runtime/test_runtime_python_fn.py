"""python_fn steps (the jamjet SDK's whole-state steps) under the embedded runtime.

A python_fn node without an ``output_key`` merges its dict output into state; with one, it
stores it like a tool. A step whose function the engine does not have waits on the ``general``
queue for a remote worker: the in-process pool never takes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tether import Runtime, tool
from tether.ir import compile_yaml_text
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


async def test_a_whole_state_step_merges_its_output_and_a_keyed_one_stores_it(
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
        for _ in range(50):  # let the pool take it if it (wrongly) would
            await anyio.sleep(0)
        (item,) = await rt.store.list_work_items(execution_id=run.id)
        assert (item.queue, item.status) == ("general", "pending")
        assert (await rt.state(run.id)).status == "running"
        local = [w for w in rt.workers() if w["local"]]
        assert local and local[0]["free_slots"] > 0
