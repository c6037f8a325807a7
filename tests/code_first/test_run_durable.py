"""``rt.run_durable``: either kind of workflow run to its result, durably (its journal is the
one a started run has)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.code_first import flows
from tether import ExecutionFailedError, Runtime, tool

pytestmark = pytest.mark.anyio
COUNTER = Path(__file__).resolve().parents[2] / "examples" / "counter.yaml"


@tool
async def add_one(n: int) -> int:
    return n + 1


async def test_a_graph_and_a_code_first_workflow_run_to_their_results(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'r.db'}", tools=[add_one],
                       workflows=[flows.pipeline]) as rt:  # fmt: skip
        assert await rt.run_durable(rt.register_yaml(COUNTER), {"n": 0}) == {"n": 3}
        assert await rt.run_durable("counter@1", {"n": 5}) == {"n": 8}
        result = await rt.run_durable(flows.pipeline, {"n": 3})
        assert (result["a"], result["b"], result["c"]) == (6, 12, 7)
        runs = await rt.list_executions()
        assert sorted(r.workflow_id for r in runs) == ["counter", "counter", "pipeline"]
        assert {r.status for r in runs} == {"completed"}
        with pytest.raises(ExecutionFailedError, match="card declined"):
            await rt.run_durable(flows.unhandled)
