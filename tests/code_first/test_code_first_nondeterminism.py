"""I8: a replay that calls something else than the journal holds stops the run, naming the
position; ``ctx.patched`` lets a deliberate change through. The code really changes: the
workflow's module is rewritten and reloaded between two runtimes on one file."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from tether import ExecutionBroken, Runtime

pytestmark = pytest.mark.anyio

HEADER = """
from tether import step, workflow

@step
async def double(x: int) -> int:
    return x * 2

@step
async def add(a: int, b: int) -> int:
    return a + b

@step
async def triple(x: int) -> int:
    return x * 3

@workflow(id="changing", version="1")
async def changing(ctx, data):
"""

ORIGINAL = """
    a = await double(1)
    b = await add(a, 1)
    decision = await ctx.approval("go")
    return {"a": a, "b": b, "decision": decision.decision}
"""


@pytest.fixture
def flow_module(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"changing_flow_{tmp_path.name.replace('-', '_')}"
    sys.path.insert(0, str(tmp_path))
    yield tmp_path / f"{name}.py", name
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


def load(where: tuple[Path, str], body: str) -> ModuleType:
    path, name = where
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(body), "    "))
    importlib.invalidate_caches()
    if name in sys.modules:
        return importlib.reload(sys.modules[name])
    return importlib.import_module(name)


async def paused_run(url: str, module: ModuleType) -> str:
    async with Runtime(url, workflows=[module.changing]) as rt:
        run = await rt.start(module.changing, {})
        with anyio.fail_after(10):
            while (await rt.get_execution(run.id)).status != "paused":
                await anyio.sleep(0)
        return run.id


CHANGES = {
    "reordered": (
        """
        b = await add(2, 1)
        a = await double(1)
        decision = await ctx.approval("go")
        return {}
        """,
        r"position 1: the journal holds double#1, the code now calls add#1",
    ),
    "changed input": (
        """
        a = await double(5)
        decision = await ctx.approval("go")
        return {}
        """,
        r"position 1: the journal holds double#1 with another input, the code now calls it "
        r"with input \{'x': 5\}",
    ),
    "removed step": (
        """
        a = await double(1)
        return {"a": a}
        """,
        r"position 2: the journal holds add#2, the code now calls nothing",
    ),
    "raises first": (
        """
        raise KeyError("new code")
        """,
        r"position 1: the journal holds double#1, the code now calls nothing \(the body ended\)",
    ),
    "new step": (
        """
        a = await double(1)
        c = await triple(a)
        b = await add(a, 1)
        decision = await ctx.approval("go")
        return {}
        """,
        r"position 2: the journal holds add#2, the code now calls triple#2",
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
async def test_a_changed_body_stops_the_run_naming_the_position(
    tmp_path: Path, flow_module: tuple[Path, str], change: str
) -> None:
    url = f"sqlite:///{tmp_path / 'nd.db'}"
    run_id = await paused_run(url, load(flow_module, ORIGINAL))
    body, message = CHANGES[change]
    changed = load(flow_module, body)
    async with Runtime(url, workflows=[changed.changing]) as rt:
        with pytest.raises(ExecutionBroken, match=message):
            await rt.approve(run_id, "approved", "ana")
        # Stopped, not failed: the journal is kept as it was, for the fixed code to resume.
        assert (await rt.get_execution(run_id)).status == "paused"
    fixed = load(flow_module, ORIGINAL)
    async with Runtime(url, workflows=[fixed.changing]) as rt:
        await rt.approve(run_id, "approved", "ana")
        assert await rt.handle(run_id).result(timeout=10) == {
            "a": 2, "b": 3, "decision": "approved",
        }  # fmt: skip


PATCHED = """
a = await double(1)
if ctx.patched("add-triple"):
    a = await triple(a)
b = await add(a, 1)
decision = await ctx.approval("go")
return {"a": a, "b": b, "decision": decision.decision}
"""


async def test_patched_lets_old_runs_replay_and_new_runs_take_the_new_path(
    tmp_path: Path, flow_module: tuple[Path, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'nd.db'}"
    old_run = await paused_run(url, load(flow_module, ORIGINAL))
    patched = load(flow_module, PATCHED)
    async with Runtime(url, workflows=[patched.changing]) as rt:
        await rt.approve(old_run, "approved", "ana")
        assert await rt.handle(old_run).result(timeout=10) == {
            "a": 2, "b": 3, "decision": "approved",
        }  # fmt: skip
        new_run = await rt.start(patched.changing, {})
        with anyio.fail_after(10):
            while (await rt.get_execution(new_run.id)).status != "paused":
                await anyio.sleep(0)
        await rt.approve(new_run.id, "approved", "ana")
        assert await new_run.result(timeout=10) == {"a": 6, "b": 7, "decision": "approved"}
        ids = [getattr(e.record, "node_id", "") for e in await rt.journal(new_run.id)]
        assert "@patch:add-triple#2" in ids and "triple#3" in ids
