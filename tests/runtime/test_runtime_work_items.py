"""Work items and leases under the embedded runtime: the in-process pool behind the scheduler.

The pool's items have no row while they run and none once completed or cancelled; failed,
dead and parked ones get theirs in the turn that journals the outcome. Parks on a rate limit,
dead letters, pool saturation, cancel, and the pool's work after an engine restart (written
pending and run again without spending an attempt), on a real SQLite file.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from tether import ExecutionFailedError, InvalidInput, RateLimited, Runtime, tool
from tether.ir import compile_yaml_text
from tether.persistence import (
    ExecutionRow,
    Lease,
    MemoryStore,
    StorageError,
    Store,
    Turn,
    WorkItemRow,
)
from tether.runtime.internals import runtime_internals
from tether.testing import VirtualClock, check_replay, crash_and_recover

pytestmark = pytest.mark.anyio

ONE_NODE = """
workflow: {{id: one, version: "1"}}
nodes:
  work: {{type: tool, tool: {tool}, retry: {retry}}}
"""
FAST_RETRY = "{max_attempts: 3, backoff_initial_secs: 0}"


def one_node(tool_name: str, retry: str = FAST_RETRY) -> str:
    return ONE_NODE.format(tool=tool_name, retry=retry)


async def items_of(rt: Runtime, execution_id: str) -> list[WorkItemRow]:
    rows = await rt.store.list_work_items(execution_id=execution_id)
    return sorted(rows, key=lambda r: (r.node_id, r.dispatch))


async def open_items(rt: Runtime) -> list[WorkItemRow]:
    return [r for s in ("pending", "leased", "parked") for r in await rt.store.list_work_items(s)]


async def test_pool_items_get_a_row_only_when_their_outcome_needs_one_I4_I5(
    db_url: str,
) -> None:
    holding, release = anyio.Event(), anyio.Event()
    failures = 0

    @tool
    async def inc(n: int) -> int:
        return n + 1

    @tool
    async def flaky_inc(n: int) -> int:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise ConnectionError("once")
        return n + 1

    @tool
    async def hold(n: int) -> int:
        holding.set()
        await release.wait()
        return n + 1

    async with Runtime(db_url, tools=[inc, flaky_inc, hold]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(CHAIN, "chain.yaml")), {"n": 0})
        with anyio.fail_after(10):
            await holding.wait()
        # "third" runs on the pool without a row; "first" and the retry of "second"
        # completed and left none; the failed attempt of "second" is in the table.
        assert await open_items(rt) == []
        rows = await items_of(rt, run.id)
        assert [(r.node_id, r.dispatch, r.status, r.attempt, r.fence) for r in rows] == [
            ("second", 1, "failed", 1, 1),
        ]
        assert "once" in (rows[0].last_error or "")
        release.set()
        assert await run.result(timeout=10) == {"n": 3}
        assert [r.work_item_id for r in await items_of(rt, run.id)] == [rows[0].work_item_id]
        await check_replay(rt, run.id)


CHAIN = """
workflow: {id: chain, version: "1", start: first, state_schema: {n: {type: integer}}}
nodes:
  first: {type: tool, tool: inc, input: {n: $n}, output_key: n, next: second}
  second:
    type: tool
    tool: flaky_inc
    input: {n: $n}
    output_key: n
    retry: {max_attempts: 3, backoff_initial_secs: 0}
    next: third
  third: {type: tool, tool: hold, input: {n: $n}, output_key: n, next: end}
"""


async def test_rate_limited_tool_parks_without_spending_attempts_I5(db_url: str) -> None:
    calls = 0
    seen: list[WorkItemRow | None] = []
    stores: list[Store] = []

    @tool
    async def limited() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:  # granted again after its park: the pool item has a row since
            seen.append(await stores[0].get_work_item("exec_limited/work/1"))
        if calls <= 2:
            raise RateLimited(0.01, f"provider: 429 (call {calls})")
        return calls

    async with Runtime(db_url, tools=[limited]) as rt:
        stores.append(rt.store)
        wf = rt.register(compile_yaml_text(one_node("limited"), "l.yaml"))
        run = await rt.start(wf, execution_id="exec_limited")
        assert await run.result() == {"work": 3}
        entries = await rt.journal(run.id)
        parked = [e.record for e in entries if e.type == "node_parked"]
        assert len(parked) == 2
        assert "429 (call 1)" in parked[0].error  # type: ignore[union-attr]
        node_records = [e.record for e in entries if e.type.startswith("node_")]
        assert {r.attempt for r in node_records} == {1}  # type: ignore[union-attr]
        assert not [e for e in entries if e.type == "node_failed"]
        [row] = await items_of(rt, run.id)
        assert (row.status, row.attempt, row.parks) == ("completed", 1, 2)
        assert row.fence == 3  # leased at creation, then granted again after each park
        [second] = seen
        assert second is not None
        assert (second.status, second.lease_owner, second.fence, second.parks) == (
            "leased",
            "local",
            2,
            1,
        )
        state = await check_replay(rt, run.id)
        assert state.nodes["work"].parks == 2


async def test_parks_leave_every_attempt_for_real_failures_I5(db_url: str) -> None:
    # Two parks, then a real failure: with max_attempts 2 the retry is attempt 2 and runs.
    # A park that spent an attempt (in the work item or in the node's state) shows here.
    calls = 0

    @tool
    async def limited() -> int:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RateLimited(0.01, f"provider: 429 (call {calls})")
        if calls == 3:
            raise ConnectionError("provider hiccup")
        return calls

    retry = "{max_attempts: 2, backoff_initial_secs: 0}"
    async with Runtime(db_url, tools=[limited]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("limited", retry), "p.yaml")))
        assert await run.result() == {"work": 4}
        entries = await rt.journal(run.id)
        attempts = [(e.type, e.record.attempt) for e in entries if e.type.startswith("node_")]  # type: ignore[union-attr]
        assert attempts == [
            ("node_scheduled", 1),
            ("node_parked", 1),
            ("node_parked", 1),
            ("node_failed", 1),
            ("node_scheduled", 2),
            ("node_completed", 2),
        ]
        rows = await items_of(rt, run.id)
        assert [(r.attempt, r.parks, r.status) for r in rows] == [(1, 2, "failed")]
        await check_replay(rt, run.id)


async def test_last_failed_attempt_is_dead_lettered_I5(db_url: str) -> None:
    @tool
    async def broken() -> int:
        raise ConnectionError("always down")

    retry = "{max_attempts: 2, backoff_initial_secs: 0}"
    async with Runtime(db_url, tools=[broken]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("broken", retry), "b.yaml")))
        with pytest.raises(ExecutionFailedError, match="always down"):
            await run.result()
        rows = await items_of(rt, run.id)
        assert [(r.dispatch, r.attempt, r.status) for r in rows] == [
            (1, 1, "failed"),
            (2, 2, "dead"),
        ]
        assert "always down" in (rows[1].last_error or "")
        dead = await rt.store.list_work_items(status="dead")
        assert [r.work_item_id for r in dead] == [rows[1].work_item_id]


async def test_a_saturated_pool_queues_items_and_grants_them_as_slots_free(db_url: str) -> None:
    running = 0
    most = 0

    @tool
    async def busy(n: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.005)
        running -= 1
        return n

    async with Runtime(db_url, tools=[busy], max_concurrency=2) as rt:
        wf = rt.register(compile_yaml_text(FAN_OUT, "fan.yaml"))
        runs = [await rt.start(wf, {"n": i}) for i in range(6)]
        for run in runs:
            await run.result(timeout=20)
        assert most == 2
        assert await open_items(rt) == []
        rows = [r for run in runs for r in await items_of(rt, run.id)]
        # Items that found a free slot when created ran without a row; the others were
        # created pending, granted later, and completed in the table.
        assert 0 < len(rows) <= 6 * 3 - 2
        assert {r.status for r in rows} == {"completed"}
        assert all(r.lease_owner is None and r.fence == 1 for r in rows)


FAN_OUT = """
workflow:
  id: fan
  version: "1"
  start: split
  state_schema: {n: {type: integer}, a: {type: integer}, b: {type: integer}, c: {type: integer}}
nodes:
  split: {type: parallel, branches: [a, b, c]}
  a: {type: tool, tool: busy, input: {n: $n}, output_key: a, next: merge}
  b: {type: tool, tool: busy, input: {n: $n}, output_key: b, next: merge}
  c: {type: tool, tool: busy, input: {n: $n}, output_key: c, next: merge}
  merge: {type: join, wait_for: [a, b, c], next: done}
  done: {type: end}
"""


async def test_cancel_settles_open_items_and_stops_the_pool(db_url: str) -> None:
    started = anyio.Event()
    stopped = anyio.Event()

    @tool
    async def forever() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async with Runtime(db_url, tools=[forever]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("forever"), "f.yaml")))
        with anyio.fail_after(10):
            await started.wait()
            assert await rt.cancel(run.id, reason="superseded")
            await stopped.wait()
        # Cancelled while the pool ran it without a row: it gets none.
        assert await items_of(rt, run.id) == []
        assert (await rt.journal(run.id))[-1].type == "execution_cancelled"


async def test_pool_work_runs_again_after_restart_without_spending_an_attempt_I3(
    db_url: str,
) -> None:
    calls = 0
    started = anyio.Event()

    @tool
    async def slow() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await anyio.sleep_forever()  # the engine goes away while this runs
        return calls

    async with Runtime(db_url, tools=[slow]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("slow"), "s.yaml")))
        with anyio.fail_after(10):
            await started.wait()
        assert await items_of(rt, run.id) == []  # running on the pool: no row

    async with Runtime(db_url, tools=[slow]) as rt:
        assert await rt.handle(run.id).result(timeout=10) == {"work": 2}
        # Recovery wrote it pending at fence 1 (the unwritten pool lease's); the scheduler
        # granted it to the pool at fence 2: no holder of the old lease could settle it.
        [row] = await items_of(rt, run.id)
        assert (row.status, row.attempt, row.dispatch, row.fence) == ("completed", 1, 1, 2)
        entries = await rt.journal(run.id)
        assert [e.type for e in entries] == [
            "execution_started",
            "node_scheduled",
            "node_completed",
            "execution_completed",
        ]
        await check_replay(rt, run.id)


async def test_an_actor_restarted_mid_step_keeps_its_rowless_pool_item_I3_I5(
    db_url: str,
) -> None:
    """The engine and its pool keep running while the supervisor restarts the execution's
    actor: the item still running on the pool is neither reissued nor run twice, and its
    outcome (fence 1) completes the run."""
    calls = 0
    started, release = anyio.Event(), anyio.Event()

    @tool(inline=False)  # on the pool: an inline tool holds its actor's messages
    async def held() -> int:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return calls

    async with Runtime(db_url, tools=[held]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("held"), "h.yaml")))
        with anyio.fail_after(10):
            await started.wait()
        await rt._tell_execution(run.id, object())  # an unknown message: the actor fails
        await rt.state(run.id)  # answered by the restarted actor, after its recovery
        assert await items_of(rt, run.id) == []  # not reissued while the pool runs it
        release.set()
        assert await rt.handle(run.id).result(timeout=10) == {"work": 1}
        assert calls == 1
        assert await items_of(rt, run.id) == []
        await check_replay(rt, run.id)


async def test_an_outcome_lost_with_a_failed_turn_runs_its_pool_item_again_I3() -> None:
    """The turn journaling a rowless pool item's outcome fails (a transient store error): the
    actor restarts, the pool no longer holds the item, so recovery reissues it and the run
    completes (at-least-once), instead of waiting for an outcome that will never come."""
    calls = 0

    @tool
    async def step() -> int:
        nonlocal calls
        calls += 1
        return calls

    store = MemoryStore()
    await store.open()
    real_append = store.append
    failed = False

    async def flaky_append(turn: Turn) -> int:
        nonlocal failed
        if not failed and any(r.type == "node_completed" for r in turn.records):
            failed = True
            raise StorageError("disk hiccup (injected)")
        return await real_append(turn)

    store.append = flaky_append  # type: ignore[method-assign]
    async with Runtime(store=store, tools=[step]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("step"), "o.yaml")))
        assert await rt.handle(run.id).result(timeout=10) == {"work": 2}
        assert failed and calls == 2
        await check_replay(rt, run.id)
    await store.close()


async def test_a_crash_with_pool_items_in_flight_reruns_them_not_what_committed_I3() -> None:
    @tool
    async def step(n: int) -> int:
        await anyio.sleep(0.001)
        return n + 1

    wf = compile_yaml_text(CHAIN_FAN, "chain_fan.yaml")
    reference = await crash_and_recover(wf, {"n": 0}, tools=[step], cut=1 << 30)
    # Cut right after the turn that hands out a, b and c: they run on the pool, without rows,
    # and the engine dies before any outcome commits.
    cut = max(e.seq for e in reference.entries if e.type == "node_scheduled")
    store = MemoryStore()
    report = await crash_and_recover(wf, {"n": 0}, tools=[step], cut=cut, store=store)
    assert report.crashed
    assert report.state.status == "completed"
    assert report.state.data == reference.state.data == {"n": 1, "a": 2, "b": 2, "c": 2}
    assert report.reran_settled == []  # "first" committed: not run again
    flying = {f"exec_crash_harness/{node}/1" for node in "abc"}
    assert {w for w, n in report.started_before.items() if n} >= flying
    assert {w for w, n in report.started_after.items() if n} == flying
    hand_outs = [e.record for e in report.entries if e.type.startswith("node_")]
    assert {r.attempt for r in hand_outs if r.dispatch > 0} == {1}  # type: ignore[union-attr]
    assert not [e for e in report.entries if e.type == "node_failed"]
    # Written pending at recovery (fence 1), granted to the pool (fence 2), completed.
    rows = await store.list_work_items(execution_id="exec_crash_harness")
    assert sorted((r.work_item_id, r.status, r.fence, r.attempt) for r in rows) == [
        (wid, "completed", 2, 1) for wid in sorted(flying)
    ]


CHAIN_FAN = """
workflow:
  id: chain_fan
  version: "1"
  start: first
  state_schema: {n: {type: integer}, a: {type: integer}, b: {type: integer}, c: {type: integer}}
nodes:
  first: {type: tool, tool: step, input: {n: $n}, output_key: n, next: split}
  split: {type: parallel, branches: [a, b, c]}
  a: {type: tool, tool: step, input: {n: $n}, output_key: a, next: merge}
  b: {type: tool, tool: step, input: {n: $n}, output_key: b, next: merge}
  c: {type: tool, tool: step, input: {n: $n}, output_key: c, next: merge}
  merge: {type: join, wait_for: [a, b, c], next: done}
  done: {type: end}
"""


async def test_a_runtime_without_any_worker_is_refused(db_url: str) -> None:
    with pytest.raises(ValueError, match="no in-process workers"):
        Runtime(db_url, max_concurrency=0)


async def test_execution_ids_of_the_runtime_actors_are_refused(db_url: str) -> None:
    @tool
    async def noop() -> None:
        return None

    async with Runtime(db_url, tools=[noop]) as rt:
        wf = rt.register(compile_yaml_text(one_node("noop"), "n.yaml"))
        with pytest.raises(InvalidInput, match="the runtime's own actors"):
            await rt.start(wf, execution_id="tether.scheduler")


class _OrderStore(MemoryStore):
    """Records when recovery listed the unfinished runs and when work was granted."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def unfinished_executions(self) -> list[ExecutionRow]:
        rows = await super().unfinished_executions()
        for _ in range(100):  # a slow read: whatever else is ready runs meanwhile
            await anyio.lowlevel.checkpoint()
        self.events.append("recovery listed")
        return rows

    async def grant(
        self, queue: str, owner: str, now_ms: int, ttl_ms: int, limit: int
    ) -> list[Lease]:
        self.events.append(f"grant to {owner}")
        return await super().grant(queue, owner, now_ms, ttl_ms, limit)


async def test_the_pool_gets_no_work_before_recovery_has_spawned_the_executions_I3() -> None:
    # Found by CI under load: the pool joined before recovery, ran a released item and
    # reported it before its execution's actor existed, and the outcome was dropped.
    started = anyio.Event()

    @tool
    async def hold() -> int:
        started.set()
        await anyio.sleep_forever()
        return 0

    @tool(name="hold")
    async def quick() -> int:
        return 7

    store = _OrderStore()
    await store.open()
    async with Runtime(store=store, tools=[hold]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("hold"), "h.yaml")))
        with anyio.fail_after(10):
            await started.wait()
    store.events.clear()
    async with Runtime(store=store, tools=[quick]) as rt:
        assert await rt.handle(run.id).result(timeout=10) == {"work": 7}
    assert store.events.index("recovery listed") < store.events.index("grant to local")


class _GrantFailsOnce(MemoryStore):
    failed = False

    async def grant(
        self, queue: str, owner: str, now_ms: int, ttl_ms: int, limit: int
    ) -> list[Lease]:
        if not self.failed:
            self.failed = True
            raise StorageError("disk full (simulated)")
        return await super().grant(queue, owner, now_ms, ttl_ms, limit)


async def test_a_refused_grant_is_tried_again_a_second_later_not_at_once() -> None:
    clock = VirtualClock()
    calls = 0

    @tool
    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("once")
        return calls

    retry = "{max_attempts: 2, backoff_initial_secs: 60, jitter: 0}"
    store = _GrantFailsOnce()
    await store.open()
    async with Runtime(store=store, tools=[flaky], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(one_node("flaky", retry), "f.yaml")))
        with anyio.fail_after(10):
            while clock.sleepers == 0:  # the retry waits pending for its backoff
                await anyio.sleep(0)
            clock.advance(60)  # due: its grant is refused, and retried on the clock, not at once
            while not store.failed or clock.sleepers == 0:
                await anyio.sleep(0)
        clock.advance(1)
        assert await run.result(timeout=10) == {"work": 2}


EARLY_EVENT = """
workflow: {id: e, version: "1", start: first, state_schema: {n: {type: integer}}}
nodes:
  first: {type: tool, tool: slow, input: {n: $n}, output_key: n, next: pause}
  pause: {type: wait, event: go, next: end}
"""


async def test_an_outcome_in_the_mailbox_of_a_restarted_actor_is_not_run_again_I3() -> None:
    """The pool reports a rowless item's outcome into the actor's mailbox behind a message
    that fails the actor: the restarted actor must take that outcome, not reissue the item
    (which would run the tool again and refuse the first outcome by fence)."""
    calls = 0
    started, release = anyio.Event(), anyio.Event()

    @tool(inline=False)  # on the pool: an inline tool holds its actor's messages
    async def slow(n: int) -> int:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return n

    store = MemoryStore()
    await store.open()
    real_append = store.append
    in_turn, go_on = anyio.Event(), anyio.Event()

    async def gated_append(turn: Turn) -> int:
        if any(r.type == "event_received" for r in turn.records):
            in_turn.set()  # the actor is inside this turn until go_on
            await go_on.wait()
        return await real_append(turn)

    store.append = gated_append  # type: ignore[method-assign]
    async with Runtime(store=store, tools=[slow]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(EARLY_EVENT, "e.yaml")), {"n": 4})
        wid = f"{run.id}/first/1"
        with anyio.fail_after(10):
            await started.wait()
            async with anyio.create_task_group() as tg:
                tg.start_soon(rt.send_event, run.id, "go", {"ok": True})
                await in_turn.wait()
                await rt._tell_execution(run.id, object())  # fails the actor when handled
                release.set()  # the outcome goes into the mailbox behind it
                while not runtime_internals(rt).services.pool_items_of(run.id).awaited(wid):
                    await anyio.lowlevel.checkpoint()
                go_on.set()
            result = await run.result()
        assert result["n"] == 4 and calls == 1
        await check_replay(rt, run.id)
    await store.close()
