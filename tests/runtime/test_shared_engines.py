"""Several engines on one Postgres schema, in one process (``Runtime(..., shared=True)``).

Each run is owned by the engine that started it and runs there; a cron fire started on two
engines at once runs once; an approval and an event sent to the engine that does not own the
run reach the owner through the inbox; an engine whose ownership expired (as if paused past
its TTL) has its run taken over by the other, its late result refused by fence, and lets go.
The real-process versions (SIGKILL, SIGSTOP) are in tests/server/test_shared_engines_processes.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from tools import pay, refund

from tether import Runtime, tool
from tether.errors import ExecutionNotRunning
from tether.ir import compile_yaml_text
from tether.testing import check_replay

psycopg = pytest.importorskip("psycopg", reason="the Postgres driver: pip install -e '.[postgres]'")

pytestmark = pytest.mark.anyio

#: An ownership TTL no test outlives: the engines renew and claim only when a test asks.
LONG = 600_000

CHAIN = """
workflow:
  id: chain
  version: "1"
  state_schema: {tag: {type: string, required: true}}
nodes:
  s1: {type: tool, tool: step, input: {k: 1, tag: $tag}, next: s2}
  s2: {type: tool, tool: step, input: {k: 2, tag: $tag}, next: s3}
  s3: {type: tool, tool: step, input: {k: 3, tag: $tag}, next: end}
"""


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def counting_step(calls: Counter[tuple[str, int]], gate: dict[int, anyio.Event] | None = None):  # type: ignore[no-untyped-def]
    @tool(name="step")
    async def step(k: int, tag: str) -> int:
        calls[(tag, k)] += 1
        if gate is not None and k in gate:
            gate[k].set()  # entered
            await gate[-k].wait()  # released by the test
        return k

    return step


async def poll(predicate: Any, what: str, deadline_s: float = 30.0) -> None:
    """Wait for ``predicate()`` (sync or async) with a deadline, checking every 20 ms."""
    with anyio.fail_after(deadline_s):
        while True:
            got = predicate()
            if hasattr(got, "__await__"):
                got = await got
            if got:
                return
            await anyio.sleep(0.02)
    raise AssertionError(what)


async def test_each_engine_runs_what_it_starts_and_owns_it(postgres_url: str) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    # a long TTL: no claim round (which forgets finished runs' owner rows) during the test
    async with (
        Runtime(
            postgres_url, tools=[counting_step(calls)], shared=True, ownership_ttl_ms=LONG
        ) as a,
        Runtime(
            postgres_url, tools=[counting_step(calls)], shared=True, ownership_ttl_ms=LONG
        ) as b,
    ):
        assert a.engine_id != b.engine_id
        runs = {}
        for i in range(4):
            for rt in (a, b):
                run = await rt.start(rt.register(wf), {"tag": f"{rt.engine_id}:{i}"})
                runs[run.id] = rt
        for eid, rt in runs.items():
            assert (await rt.wait(eid)).status == "completed"
            await check_replay(rt, eid)
        owners = dict(sql(postgres_url, "SELECT execution_id, engine_id FROM tether_owners"))
        assert owners == {eid: rt.engine_id for eid, rt in runs.items()}
        # the other engine reads the same journal, and its run.result() sees the end
        for eid, rt in runs.items():
            other = b if rt is a else a
            assert (await other.wait(eid)).status == "completed"
    assert set(calls.values()) == {1}  # every step of every run ran once


async def test_a_fire_started_on_two_engines_at_once_runs_once(postgres_url: str) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    fire = "sched_nightly_1764000000000"  # the deterministic id a cron fire starts
    async with (
        Runtime(postgres_url, tools=[counting_step(calls)], shared=True) as a,
        Runtime(postgres_url, tools=[counting_step(calls)], shared=True) as b,
    ):
        a.register(wf)
        b.register(wf)
        async with anyio.create_task_group() as tg:
            for rt in (a, b, a, b):
                tg.start_soon(rt._start_scheduled, fire, "chain", "1", {"tag": "fire"})
        state = await a.wait(fire)
        assert state.status == "completed"
        started = [r.type for r in await b.journal(fire)].count("execution_started")
        assert started == 1
    assert calls == Counter({("fire", 1): 1, ("fire", 2): 1, ("fire", 3): 1})


async def test_signals_sent_to_the_other_engine_reach_the_owner(
    postgres_url: str, examples: Path
) -> None:
    async with (
        Runtime(postgres_url, tools=[pay, refund], shared=True, ownership_ttl_ms=LONG) as a,
        Runtime(postgres_url, tools=[pay, refund], shared=True, ownership_ttl_ms=LONG) as b,
    ):
        wf = a.register_yaml(examples / "payment.yaml")
        b.register_yaml(examples / "payment.yaml")
        run = await a.start(wf, {"amount": 50})

        async def waits_for_review() -> bool:
            return bool(await b.pending_approvals())

        await poll(waits_for_review, "the run never waited for its approval")
        state = await b.approve(run.id, "approved", "alice@example.com")  # b does not own it
        assert state.nodes["review"].status == "completed"
        await poll(lambda: _waits_for_event(b, run.id), "the run never waited for its event")
        assert await b.send_event(run.id, "payment-cleared", {"ref": "tx-9"}, event_id="ev1")
        final = await b.wait(run.id, timeout=30)
        assert (final.status, final.data["ref"]) == ("completed", "tx-9")
        with pytest.raises(ExecutionNotRunning):  # the owner's "no actor took it", forwarded
            await b.send_event(run.id, "payment-cleared", {"ref": "tx-9"}, event_id="ev2")
        owners = sql(postgres_url, "SELECT engine_id FROM tether_owners")
        assert owners == [(a.engine_id,)]  # the run never moved: b forwarded the signals
        await check_replay(a, run.id)
        assert sql(postgres_url, "SELECT count(*) FROM tether_inbox") == [(0,)]


async def _waits_for_event(rt: Runtime, eid: str) -> bool:
    return any(r.type == "node_waiting" for r in await rt.journal(eid)) and (
        (await rt.state(eid)).nodes.get("cleared") is not None
    )


async def test_an_engine_past_its_ttl_loses_its_run_and_its_late_result_is_refused(
    postgres_url: str,
) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    gate = {2: anyio.Event(), -2: anyio.Event()}
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    # a's TTL is long: it does not renew during the test; its row is expired by hand below,
    # as if it had been paused (SIGSTOP) past the TTL
    async with (
        Runtime(postgres_url, tools=[counting_step(calls, gate)], shared=True,
                ownership_ttl_ms=600_000) as a,
        Runtime(postgres_url, tools=[counting_step(calls)], shared=True) as b,
    ):  # fmt: skip
        run = await a.start(a.register(wf), {"tag": "t"})
        await gate[2].wait()  # a is inside step 2
        sql(postgres_url, "UPDATE tether_engines SET expires_ms = 0 WHERE engine_id = %s",
            (a.engine_id,))  # fmt: skip
        assert b._shared is not None
        assert await b._shared.keeper.claim() == [run.id]
        assert (await b.wait(run.id, timeout=30)).status == "completed"
        gate[-2].set()  # a's step 2 returns now: its turn must be refused by fence
        await poll(lambda: a._system_ref(run.id) is None, "engine a kept acting for the run")
        assert a._shared is not None and run.id not in a._shared.ownership.fences.held
        journal = [r.type for r in await b.journal(run.id)]
        assert journal.count("node_completed") == 3  # a's late step 2 was not written
        await check_replay(b, run.id)
    # step 2 ran on both (a's result was never committed); steps 1 and 3 once
    assert calls == Counter({("t", 1): 1, ("t", 2): 2, ("t", 3): 1})
