"""The fleet Worker in-process against a test engine on 127.0.0.1: grants, results, credit,
concurrency, failures of every kind, rate limits and timeouts (I5, I10)."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from worker_engine import Gate, TestEngine, engine_on, grant, running_worker

from tether.errors import NonRetryableError
from tether.fleet import Bye, Credit, RateLimited, Result
from tether.fleet import ratelimit as rl
from tether.runtime.tools import Tool, tool

pytestmark = pytest.mark.anyio


@tool
async def echo(value: Any) -> Any:
    return value


@tool
def add(a: int, b: int) -> dict[str, Any]:
    return {"sum": a + b, "thread": threading.current_thread() is not threading.main_thread()}


@tool
def flaky(msg: str) -> None:
    raise ValueError(msg)


@tool
async def hopeless() -> None:
    raise NonRetryableError("the input can never work")


@tool
async def opaque() -> object:
    return object()


@tool
async def throttled(wait: float) -> None:
    raise rl.RateLimited(wait, "provider said 429")


def gated(gate: Gate) -> Tool:
    @tool
    async def gated(name: str) -> str:
        await gate.enter(name)
        return name

    return gated


async def test_grants_run_with_their_fences_within_concurrency_and_credit_replenishes() -> None:
    gate, engine = Gate(), TestEngine()
    async with engine_on(engine) as broker:
        engine.add(*(grant(f"wi{i}", "gated", {"name": f"n{i}"}, fence=i + 1) for i in range(10)))
        async with running_worker(broker.endpoint, [gated(gate)], concurrency=3):
            # The Hello's capacity is the only credit: three grants, three running, no more.
            await engine.wait_until(lambda: gate.current == 3)
            assert len(engine.granted) == 3 and engine.credits == []
            gate.open()
            await engine.wait_until(lambda: len(engine.outcomes) == 10)
            await engine.wait_until(lambda: len(engine.credits) == 10)
    assert gate.peak == 3
    for i in range(10):
        out = engine.results()[f"wi{i}"]
        assert isinstance(out, Result)
        assert out == Result(
            work_item_id=f"wi{i}", fence=i + 1, ok=True, output=f"n{i}", duration_ms=out.duration_ms
        )
    assert set(engine.credits) == {1}
    # Drained: no credit after the last result, then Bye.
    assert "bye: drained" in engine.left


async def test_sync_tools_run_in_a_thread_and_async_tools_on_the_loop() -> None:
    engine = TestEngine()
    async with engine_on(engine) as broker:
        engine.add(grant("s", "add", {"a": 2, "b": 3}), grant("a", "echo", {"value": [1, "x"]}))
        async with running_worker(broker.endpoint, [add, echo]):
            await engine.wait_until(lambda: len(engine.outcomes) == 2)
    sync, async_ = engine.results()["s"], engine.results()["a"]
    assert isinstance(sync, Result) and sync.ok and sync.output == {"sum": 5, "thread": True}
    assert isinstance(async_, Result) and async_.ok and async_.output == [1, "x"]


@pytest.mark.parametrize(
    ("g", "error_type", "retryable", "says"),
    [
        (grant("f", "flaky", {"msg": "boom"}), "ValueError", True, "boom"),
        (grant("n", "hopeless"), "NonRetryableError", False, "can never work"),
        (grant("u", "nope"), "UnknownTool", False, "'nope' is not registered"),
        (grant("o", "opaque"), "UnserializableOutput", False, "msgpack cannot encode"),
        (grant("b", "echo", {"valu": 1}), "BadToolInput", False, "missing value; unexpected valu"),
    ],
    ids=["retryable", "non-retryable", "unknown-tool", "unserializable", "bad-input"],
)
async def test_failures_are_reported_with_type_and_retryability(
    g: Any, error_type: str, retryable: bool, says: str
) -> None:
    engine = TestEngine()
    async with engine_on(engine) as broker:
        engine.add(g)
        async with running_worker(broker.endpoint, [echo, flaky, hopeless, opaque]):
            out = await engine.wait_until(lambda: engine.outcome(g.work_item_id))
            await engine.wait_until(lambda: engine.credits == [1])  # the slot comes back
    assert isinstance(out, Result) and not out.ok
    assert (out.error_type, out.retryable, out.fence) == (error_type, retryable, g.fence)
    assert says in out.error


async def test_a_tool_raising_rate_limited_sends_rate_limited_with_retry_after() -> None:
    engine = TestEngine()
    async with engine_on(engine) as broker:
        engine.add(grant("r", "throttled", {"wait": 12.5}, fence=4))
        async with running_worker(broker.endpoint, [throttled]):
            out = await engine.wait_until(lambda: engine.outcome("r"))
    assert out == RateLimited(
        work_item_id="r", fence=4, retry_after_secs=12.5, error="provider said 429"
    )


async def test_timeouts_cancel_the_tool_and_report_a_retryable_failure() -> None:
    gate, engine = Gate(), TestEngine()
    release = threading.Event()

    @tool
    def stuck() -> None:
        release.wait(10)

    try:
        async with engine_on(engine) as broker:
            engine.add(
                grant("a", "gated", {"name": "a"}, timeout_secs=0.2),
                grant("s", "stuck", timeout_secs=0.2),
            )
            async with running_worker(broker.endpoint, [gated(gate), stuck]):
                await engine.wait_until(lambda: len(engine.outcomes) == 2)
                await engine.wait_until(lambda: len(engine.credits) == 2)
    finally:
        release.set()
    assert gate.cancelled == ["a"]
    for wid, name in [("a", "gated"), ("s", "stuck")]:
        out = engine.results()[wid]
        assert isinstance(out, Result) and not out.ok and out.retryable
        assert out.error_type == "TimeoutError"
        assert out.error == f"tool {name!r} timed out after 0.2s"
        assert out.duration_ms >= 200


async def test_results_free_their_slots_themselves_when_the_engine_counts_result_credits() -> None:
    gate, engine = Gate(), TestEngine()
    async with engine_on(engine, result_credits=True) as broker:
        engine.add(*(grant(f"wi{i}", "gated", {"name": f"n{i}"}, fence=1) for i in range(6)))
        async with running_worker(broker.endpoint, [gated(gate)], concurrency=2):
            await engine.wait_until(lambda: gate.current == 2)
            assert len(engine.granted) == 2
            gate.open()
            # Only the Results' credit lets the other four be granted.
            await engine.wait_until(lambda: len(engine.outcomes) == 6)
    assert gate.peak == 2
    assert [o.credit for o in engine.outcomes] == [1] * 6
    assert engine.credits == []  # no Credit message besides


async def test_stop_drains_running_tools_reports_them_and_sends_no_more_credit() -> None:
    gate, engine = Gate(), TestEngine()
    async with engine_on(engine) as broker:
        engine.add(grant("a", "gated", {"name": "a"}))
        async with running_worker(broker.endpoint, [gated(gate)], concurrency=2) as worker:
            await engine.wait_until(lambda: gate.current == 1)
            worker.request_stop()
            engine.add(grant("late", "gated", {"name": "late"}))  # already credited: runs too
            await engine.wait_until(lambda: gate.current == 2)
            gate.open()
            await engine.wait_until(lambda: len(engine.outcomes) == 2)
        await engine.wait_until(lambda: engine.left)
    assert {o.work_item_id for o in engine.outcomes} == {"a", "late"}
    assert not any(isinstance(m, Credit) for m in engine.received)
    assert engine.left == ["bye: drained"]
    assert not any(isinstance(m, Bye) for m in engine.received)  # Bye is a departure


async def test_a_refused_ack_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    engine = TestEngine(accept=False)
    async with engine_on(engine) as broker:
        engine.add(grant("x", "echo", {"value": 1}, fence=2))
        with anyio.fail_after(5):
            async with running_worker(broker.endpoint, [echo]) as worker:
                await engine.wait_until(lambda: engine.outcome("x"))
                await engine.wait_until(lambda: engine.credits)
                assert worker.in_flight == 0
    assert "refused the result for x fence 2" in caplog.text


def test_retry_after_from_http_reads_seconds_dates_and_ignores_other_statuses() -> None:
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert rl.retry_after_from_http(429, {"Retry-After": "120"}, now) == 120.0
    assert rl.retry_after_from_http(429, {"retry-after": " 1.5 "}, now) == 1.5
    date = "Tue, 14 Nov 2023 22:14:00 GMT"
    assert rl.retry_after_from_http(429, {"Retry-After": date}, now) == pytest.approx(40.0)
    past = "Tue, 14 Nov 2023 22:00:00 GMT"
    assert rl.retry_after_from_http(429, {"Retry-After": past}, now) == 0.0
    assert rl.retry_after_from_http(429, {}, now) == rl.DEFAULT_RETRY_AFTER_SECS
    assert rl.retry_after_from_http(429, {"Retry-After": "soon"}, now) == 1.0
    assert rl.retry_after_from_http(429, {"Retry-After": "-5"}, now) == 0.0
    assert rl.retry_after_from_http(200, {"Retry-After": "120"}, now) is None
    assert rl.retry_after_from_http(503, {"Retry-After": "120"}, now) is None


def test_rate_limited_exception_carries_retry_after_and_a_message() -> None:
    exc = rl.RateLimited(3, "slow down")
    assert (exc.retry_after, exc.message, str(exc)) == (3.0, "slow down", "slow down")
    assert rl.RateLimited(-1).retry_after == 0.0
    assert str(rl.RateLimited(2)) == "rate limited: retry after 2s"
