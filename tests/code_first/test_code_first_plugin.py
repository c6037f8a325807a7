"""The pytest plugin on code-first workflows: the crash-points marker crashes a body's run at
every journal position and checks that nothing committed ran again (issue 23 on issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.code_first import flows


@pytest.mark.tether(workflows=[flows.pipeline], storage="memory")
@pytest.mark.tether_crash_points
async def test_a_code_first_pipeline_at_every_crash_point(tether_runtime: Any) -> None:
    run = await tether_runtime.start(flows.pipeline, {"n": 3})
    result = await run.result()
    assert (result["a"], result["b"], result["c"]) == (6, 12, 7)


@pytest.mark.tether(storage="memory")
@pytest.mark.tether_crash_points
async def test_children_at_every_crash_point(tether_runtime: Any) -> None:
    run = await tether_runtime.start(flows.parent, {"values": [1, 2]})
    assert await run.result() == {"first": 6, "both": [2, 4], "failed": "failed"}
