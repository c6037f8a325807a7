"""One structured log line per lifecycle event, with the ids that find it again: read as a
service embedding the runtime sees them (standard logging records with their fields)."""

from __future__ import annotations

import logging

import pytest
from tools import add_one

from tether import Runtime, tool
from tether.ir import compile_yaml_text
from tether.testing import VirtualClock

pytestmark = pytest.mark.anyio

FLAKY = """
workflow: {id: flaky, version: "1", start: call}
nodes:
  call: {type: tool, tool: fails_once, retry: {max_attempts: 2, backoff_initial_secs: 0}, next: end}
"""

WAITING = """
workflow: {id: later, version: "1", start: nap, state_schema: {n: {type: integer, default: 0}}}
nodes:
  nap: {type: wait, duration: 1h, next: add}
  add: {type: tool, tool: add_one, output_key: n, next: end}
"""


def events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    return [(r.getMessage(), getattr(r, "fields", {})) for r in caplog.records]


async def test_started_failed_and_ended_carry_execution_node_and_worker_ids(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    @tool
    async def fails_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first call fails")

    caplog.set_level(logging.INFO, logger="tether")
    async with Runtime(db_url, tools=[fails_once]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(FLAKY, "flaky.yaml")), {})
        await run.result()
    seen = events(caplog)
    assert ("execution_started", {"execution_id": run.id, "workflow": "flaky@1"}) in seen
    [failed] = [f for e, f in seen if e == "node_failed"]
    assert failed["execution_id"] == run.id and failed["node_id"] == "call"
    assert (failed["attempt"], failed["worker_id"]) == (1, "local")
    assert failed["error"] == "ValueError: first call fails" and failed["retryable"] is True
    assert ("execution_ended", {"execution_id": run.id, "status": "completed", "error": None}) in (
        seen
    )


async def test_a_recovered_execution_says_it_resumed(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[add_one], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(WAITING, "later.yaml")), {})
    caplog.set_level(logging.INFO, logger="tether")
    async with Runtime(db_url, tools=[add_one], clock=clock) as rt:
        clock.advance(3600)
        assert (await rt.handle(run.id).result())["n"] == 1
    [resumed] = [f for e, f in events(caplog) if e == "execution_resumed"]
    assert resumed["execution_id"] == run.id and resumed["workflow"] == "later@1"
