"""ctx.continue_as_new: a body starts again in a new segment with a new input and an empty
journal; the run keeps its id and its result comes from the last segment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.code_first import flows
from tether import Runtime
from tether.testing import check_replay, crash_and_recover, journal_length

pytestmark = pytest.mark.anyio


async def test_each_round_is_a_segment_and_the_run_ends_with_the_last(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'c.db'}", workflows=[flows.rounds]) as rt:
        run = await rt.start(flows.rounds, {"round": 1, "upto": 4, "total": 0})
        assert await run.result(timeout=10) == {"total": 10, "rounds": 4}
        last = await rt.current_segment(run.id)
        assert last != run.id
        await check_replay(rt, last)
        first = [e.type for e in await rt.journal(run.id)]
        assert first == [
            "execution_started", "node_scheduled", "node_completed", "node_completed",
            "segment_boundary",
        ]  # fmt: skip


async def test_a_crash_anywhere_in_a_continued_run_recovers_it() -> None:
    data = {"round": 1, "upto": 3, "total": 0}
    total = await journal_length(flows.rounds, data, tools=[])
    for cut in range(total + 1):
        report = await crash_and_recover(flows.rounds, data, tools=[], cut=cut)
        assert report.state.status in {"completed", "continued"}, (cut, report.state.error)
        assert report.reran_settled == [] and report.unjournaled == [], cut
