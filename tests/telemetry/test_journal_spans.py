"""Spans from the journal (the SDK's in-memory exporter): the tree of a run, their ids as
the grant's traceparent names them, and nothing when tracing is off."""

from __future__ import annotations

import anyio
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether import Runtime, tool
from tether.ir import compile_yaml_text
from tether.persistence.artifacts.front import SpillingStore
from tether.runtime.internals import runtime_internals
from tether.telemetry.follower import start_tracing
from tether.telemetry.trace_ids import (
    TraceParents,
    parse_traceparent,
    root_of,
    trace_id,
    traceparent,
)

pytestmark = pytest.mark.anyio
FAILS: dict[str, int] = {}


@tool
async def inc(n: int) -> int:
    return n + 1


@tool
async def flaky(n: int) -> int:
    FAILS["flaky"] = FAILS.get("flaky", 0) + 1
    if FAILS["flaky"] == 1:
        raise ConnectionError("first try fails")
    return n * 10


FLOW = compile_yaml_text(
    """
workflow: {id: traced, version: "3", start: a, state_schema: {n: {type: integer, default: 0}}}
nodes:
  a: {type: tool, tool: inc, output_key: n, next: b}
  b: {type: tool, tool: flaky, output_key: n, retry: {max_attempts: 2, backoff_initial_secs: 0.01},
      next: end}
"""
)


async def test_a_run_is_one_trace_execution_node_attempts_and_tool_calls(db_url: str) -> None:
    FAILS.clear()
    exporter = InMemorySpanExporter()
    async with Runtime(db_url, tools=[inc, flaky]) as rt, anyio.create_task_group() as tg:
        tracing = await start_tracing(rt, SimpleSpanProcessor(exporter), tg)
        run = await rt.start(FLOW, {"n": 1})
        assert await run.result() == {"n": 20}
        await tracing.aclose()
        assert runtime_internals(rt).services.store is not tracing  # its own store again
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[object]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert {s.context.trace_id for s in spans} == {trace_id(run.id)}
    [execution] = by_name["execution traced@3"]
    assert execution.parent is None
    assert execution.attributes["tether.status"] == "completed"
    nodes = by_name["node a"] + by_name["node b"]
    assert len(nodes) == 3  # a once, b twice (one failed attempt)
    assert all(n.parent.span_id == execution.context.span_id for n in nodes)
    failed = [n for n in by_name["node b"] if n.attributes["tether.attempt"] == 1]
    assert failed[0].status.status_code.name == "ERROR"
    assert "first try fails" in (failed[0].status.description or "")
    for node in nodes:
        attrs = node.attributes
        assert attrs["tether.execution_id"] == run.id
        assert attrs["tether.workflow_id"] == "traced"
        assert attrs["tether.workflow_version"] == "3"
        assert attrs["tether.worker_id"] == "local"
        assert execution.start_time <= node.start_time <= node.end_time <= execution.end_time
        # The grant's traceparent names this span: a worker's span joins it.
        ids = parse_traceparent(
            traceparent(run.id, attrs["tether.node_id"], attrs["tether.dispatch"])
        )
        assert ids == (node.context.trace_id, node.context.span_id)
    calls = by_name["execute_tool inc"] + by_name["execute_tool flaky"]
    assert len(calls) == 3
    parents = {n.context.span_id for n in nodes}
    assert all(c.parent.span_id in parents for c in calls)
    assert calls[0].attributes["gen_ai.operation.name"] == "execute_tool"


async def test_tracing_off_leaves_the_store_alone(db_url: str) -> None:
    async with Runtime(db_url, tools=[inc]) as rt:
        store = runtime_internals(rt).services.store
        # No tracing front: the only one is the artifact spill's (a length compare a record).
        assert isinstance(store, SpillingStore)
        assert type(store.inner).__name__ == "SqliteStore"
    async with Runtime(db_url, tools=[inc], artifact_threshold=None) as rt:
        assert type(runtime_internals(rt).services.store).__name__ == "SqliteStore"


def test_ids_are_stable_and_runs_share_a_trace() -> None:
    assert trace_id("exec_1~2.57") == trace_id("exec_1") == trace_id("exec_1~child1.3")
    assert root_of("exec_1~child1.3") == "exec_1"
    assert traceparent("e", "n", 1) == traceparent("e", "n", 1) != traceparent("e", "n", 2)
    assert parse_traceparent("nonsense") is None
    assert parse_traceparent("00-" + "0" * 32 + "-" + "1" * 16 + "-01") is None


def test_cached_traceparents_are_the_traceparents_also_past_their_size() -> None:
    parents = TraceParents(size=2)
    steps = [(e, n, d) for e in ("a", "b~2.1", "c", "a") for n in ("x", "y") for d in (1, 2)]
    for step in steps * 2:  # the second pass finds some cached, some forgotten
        assert parents.of(*step) == traceparent(*step)
