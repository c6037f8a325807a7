"""Real-process crash tests of the fleet: an engine with ``max_concurrency=0`` on a SQLite file,
``tether worker`` processes on 127.0.0.1, and SIGKILL / SIGSTOP / SIGCONT between them
(I3, I5, I10).

Every tool call appends a line to a side-effect log (see crash_tools.py), so each test checks
both what the journal says and what really ran, and where. Every wait is for an event (a log
line, a process exit, a result), polled with a deadline; leftover processes are killed.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest
import zmq.asyncio
from crash_tools import (
    CHAIN_YAML,
    HOLD_YAML,
    STEPS,
    THROTTLED_YAML,
    read_effects,
)
from fleet_helpers import RawPeer, hello
from fleet_processes import (
    DEADLINE,
    Children,
    connected,
    effects_of,
    eventually,
    exit_code,
    fleet_engine,
    node_records,
    shape,
)

from tether.fleet import PROTOCOL_VERSION, Ack, Result, Welcome
from tether.fleet.protocol import ERR_BAD_FRAME, ERR_PROTOCOL_VERSION
from tether.ir import compile_yaml_text
from tether.persistence.urls import open_store
from tether.runtime.records import (
    CAUSE_LEASE_LOST,
    ExecutionCompleted,
    NodeCompleted,
    NodeFailed,
    NodeParked,
    decode_rows,
)
from tether.testing import VirtualClock, check_journal
from tether.testing.loopback import free_loopback_port as free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


# --- 1. SIGKILL a worker mid-node ------------------------------------------------------------


async def test_sigkill_worker_mid_node_costs_one_attempt_and_completes_once_I5(
    tmp_path: Path, children: Children
) -> None:
    log = children.log
    async with fleet_engine(tmp_path) as (rt, endpoint):
        workers = [children.worker(n, endpoint) for n in ("wa", "wb")]
        await connected(*workers)
        wf = rt.register(compile_yaml_text(HOLD_YAML, "hold.yaml"))
        run = await rt.start(wf, {"key": "k1"}, execution_id="sigkill-1")

        # Whichever worker got the grant logs "start" and holds the node: kill it there.
        first = await eventually(lambda: effects_of(log, "start", "k1"), "the node to start")
        victim = children.by_pid(first[0].pid)
        survivor = next(w for w in workers if w is not victim)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.proc.wait(timeout=DEADLINE) == -signal.SIGKILL

        result = await run.result(timeout=DEADLINE)
        journal = await rt.journal(run.id)
        items = await rt.store.list_work_items(execution_id=run.id)

    assert result["held"] == {"by": survivor.name, "pid": survivor.pid}
    hold = node_records(journal, "hold")
    assert shape(hold) == [
        ("node_scheduled", 1, 1),
        ("node_failed", 1, 1),
        ("node_scheduled", 2, 2),
        ("node_completed", 2, 2),
    ]
    failed = hold[1]
    assert isinstance(failed, NodeFailed)
    assert failed.error.startswith("lease expired"), failed.error
    assert victim.name in failed.error
    assert (failed.error_type, failed.retryable) == ("LeaseExpired", True)
    assert failed.cause == CAUSE_LEASE_LOST  # the worker's death, not the tool's failure
    completed = [r for r in hold if isinstance(r, NodeCompleted)]
    assert len(completed) == 1 and completed[0].output == result["held"]
    assert isinstance(journal[-1].record, ExecutionCompleted)
    # The work items: the victim's hand-out failed at fence 1, the retry completed.
    by_dispatch = {i.dispatch: (i.status, i.attempt, i.fence, i.lease_owner) for i in items}
    assert by_dispatch[1][:3] == ("failed", 1, 1)
    assert by_dispatch[2][:3] == ("completed", 2, 1)
    # What really ran: started on both, finished only on the survivor.
    assert [(e.worker, e.pid) for e in effects_of(log, "start", "k1")] == [
        (victim.name, victim.pid),
        (survivor.name, survivor.pid),
    ]
    assert [e.worker for e in effects_of(log, "done", "k1")] == [survivor.name]


# --- 2. SIGSTOP a worker past its lease ------------------------------------------------------


async def test_sigstopped_worker_late_result_is_refused_first_completion_kept_I5(
    tmp_path: Path, children: Children
) -> None:
    """The stopped worker resumes, finishes its tool and sends the stale Result; the engine
    refuses it (no live lease for that item) and the journal keeps the survivor's completion.

    The engine notices a silent worker twice over: the broker's silence sweep (real time)
    forgets the worker and reclaims its leases, and the scheduler's own lease clock reclaims a
    lease that went unheartbeated. Whichever fires first wins, a coin toss at the TTL. Only on
    the broker's path is no Cancel queued for the stopped worker; on the other, the resumed
    worker reads the Cancel first and drops its outcome (without a log line when the tool had
    already finished), so no late Result reaches the fence. The engine here runs on a clock
    that stands still (retries are due at once, see HOLD_YAML), which leaves the broker's path,
    deterministically.
    """
    log = children.log
    async with fleet_engine(tmp_path, clock=VirtualClock()) as (rt, endpoint):
        workers = [children.worker(n, endpoint) for n in ("wa", "wb")]
        await connected(*workers)
        wf = rt.register(compile_yaml_text(HOLD_YAML, "hold.yaml"))
        run = await rt.start(wf, {"key": "k2"}, execution_id="sigstop-1")

        first = await eventually(lambda: effects_of(log, "start", "k2"), "the node to start")
        victim = children.by_pid(first[0].pid)
        survivor = next(w for w in workers if w is not victim)
        os.kill(victim.pid, signal.SIGSTOP)
        # Its lease is reclaimed, the survivor runs the retry, the execution completes.
        result = await run.result(timeout=DEADLINE)
        settled = await rt.journal(run.id)
        items = await rt.store.list_work_items(execution_id=run.id)

        os.kill(victim.pid, signal.SIGCONT)
        stale = f"{run.id}/hold/1"
        refused = await eventually(
            lambda: [
                line
                for line in victim.stderr().splitlines()
                if f"engine refused the result for {stale} fence 1:" in line
            ],
            "the resumed worker to hear its late result refused",
        )
        # The refusal is the answer to the late Result; nothing more follows from it.
        assert await rt.journal(run.id) == settled
        assert await rt.store.list_work_items(execution_id=run.id) == items
        assert victim.alive()  # it re-registered and serves on

    assert f"work item {stale}: no live lease" in refused[0], refused
    assert "re-registered with engine" in victim.stderr()
    assert result["held"] == {"by": survivor.name, "pid": survivor.pid}
    hold = node_records(settled, "hold")
    assert shape(hold) == [
        ("node_scheduled", 1, 1),
        ("node_failed", 1, 1),
        ("node_scheduled", 2, 2),
        ("node_completed", 2, 2),
    ]
    failed = hold[1]
    assert isinstance(failed, NodeFailed) and failed.error_type == "LeaseExpired"
    assert failed.error.startswith(f"lease expired: worker {victim.name} silent for "), failed
    completed = [r for r in hold if isinstance(r, NodeCompleted)]
    assert len(completed) == 1 and completed[0].output == result["held"]
    assert isinstance(settled[-1].record, ExecutionCompleted)
    by_dispatch = {i.dispatch: (i.status, i.fence) for i in items}
    assert by_dispatch == {1: ("failed", 1), 2: ("completed", 1)}
    # Both really ran it: the survivor first, the stopped worker once it was let go.
    assert [e.worker for e in effects_of(log, "start", "k2")] == [victim.name, survivor.name]
    assert [e.worker for e in effects_of(log, "done", "k2")] == [survivor.name, victim.name]


async def test_a_stopped_worker_is_gone_after_missed_heartbeats_not_a_whole_lease_ttl_I5(
    tmp_path: Path, children: Children
) -> None:
    """A lease TTL of a minute, heartbeats every 250 ms: the engine takes the stopped worker
    as gone after two seconds of silence (``Broker`` ``MIN_SILENCE_MS``), reclaims its
    lease and the other worker runs the retry, long before the TTL would (issue 19: runs
    waited a whole TTL behind a frozen worker). The engine's clock stands still, so the
    scheduler's own lease clock never fires: only the silence can reclaim."""
    async with fleet_engine(tmp_path, clock=VirtualClock(), ttl_ms=60_000, heartbeat_ms=250) as (
        rt,
        endpoint,
    ):
        workers = [children.worker(n, endpoint) for n in ("wa", "wb")]
        await connected(*workers)
        wf = rt.register(compile_yaml_text(HOLD_YAML, "hold.yaml"))
        run = await rt.start(wf, {"key": "k3"}, execution_id="silent-1")
        first = await eventually(lambda: effects_of(children.log, "start", "k3"), "a start")
        victim = children.by_pid(first[0].pid)
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            result = await run.result(timeout=DEADLINE)  # DEADLINE is under the TTL
        finally:
            os.kill(victim.pid, signal.SIGCONT)
        hold = node_records(await rt.journal(run.id), "hold")
    survivor = next(w for w in workers if w is not victim)
    assert result["held"]["by"] == survivor.name
    failed = next(r for r in hold if isinstance(r, NodeFailed))
    assert failed.cause == CAUSE_LEASE_LOST
    assert failed.error.startswith(f"lease expired: worker {victim.name} silent for "), failed
    assert int(failed.error.split("silent for ")[1].split()[0]) < DEADLINE * 1000


# --- 3. SIGKILL the engine ------------------------------------------------------------------


async def test_sigkill_engine_with_work_in_flight_restart_loses_nothing_applies_nothing_twice_I3_I5(
    tmp_path: Path, children: Children
) -> None:
    n = 32
    db, port, log = tmp_path / "engine.db", free_port(), children.log
    endpoint = f"tcp://127.0.0.1:{port}"
    ids = [f"run-{i:04d}" for i in range(n)]

    first = children.engine("engine1", db, port, n)
    workers = [children.worker(name, endpoint, concurrency=4) for name in ("w1", "w2")]
    await connected(*workers)
    await eventually(lambda: f"started {n}" in first.lines() or not first.alive(), "the starts")
    # Kill it half way through the steps, with both workers busy.
    await eventually(lambda: len(read_effects(log)) >= 2 * n or not first.alive(), "half the steps")
    os.kill(first.pid, signal.SIGKILL)
    assert await exit_code(first) == -signal.SIGKILL, first.stderr()
    finished_before = {line.split()[1] for line in first.lines() if line.startswith("done ")}
    assert len(finished_before) < n

    store = await open_store(f"sqlite:///{db}", readonly=True)
    try:
        leased = [i for i in await store.open_work_items() if i.status == "leased"]
        # Steps whose completion the dead engine had committed: none may run again.
        committed = {
            f"{eid}/{e.record.node_id}"
            for eid in ids
            for e in decode_rows(await store.read(eid))
            if isinstance(e.record, NodeCompleted)
        }
    finally:
        await store.close()
    ran_by_then = Counter(e.key for e in read_effects(log) if e.event == "run")
    assert leased, "the engine died with no lease out: the test killed it too late"
    assert {i.lease_owner for i in leased} <= {"w1", "w2"}
    assert committed and committed <= set(ran_by_then)

    # Same file, same port: the workers find it again and report what they ran meanwhile.
    second = children.engine("engine2", db, port, n)
    assert await exit_code(second) == 0, second.stderr()
    lines = second.lines()
    assert lines[0] == f"listening {endpoint}" and lines[1] == f"started {n}"
    assert lines[-1] == f"all done {n}"
    assert sorted(line.split()[1] for line in lines[2:-1]) == ids
    assert {line.split()[2] for line in lines[2:-1]} == {"completed"}
    assert any("re-registered with engine" in w.stderr() for w in workers)
    for w in workers:
        os.kill(w.pid, signal.SIGTERM)
    for w in workers:
        assert await exit_code(w) == 0, w.stderr()
        assert "Traceback" not in w.stderr()

    store = await open_store(f"sqlite:///{db}", readonly=True)
    try:
        rows = await store.list_executions(limit=10 * n)
        assert sorted(r.execution_id for r in rows) == ids
        assert {r.status for r in rows} == {"completed"}
        journals = {eid: decode_rows(await store.read(eid)) for eid in ids}
        items = [i for eid in ids for i in await store.list_work_items(execution_id=eid)]
    finally:
        await store.close()

    grants: Counter[str] = Counter()
    for item in items:
        grants[f"{item.execution_id}/{item.node_id}"] += item.fence
    runs = Counter(e.key for e in read_effects(log) if e.event == "run")
    for eid, journal in journals.items():
        check_journal(journal)  # each dispatch scheduled once and settled at most once
        completed = Counter(
            e.record.node_id for e in journal if isinstance(e.record, NodeCompleted)
        )
        assert completed == Counter(dict.fromkeys(STEPS, 1)), eid
        end = journal[-1].record
        assert isinstance(end, ExecutionCompleted) and end.result["x"] == len(STEPS), eid
        for node in STEPS:
            key = f"{eid}/{node}"
            # It ran, and never more often than it was granted (a grant is one run at most).
            assert 1 <= runs[key] <= grants[key], (key, runs[key], grants[key])
    rerun = {key for key in committed if runs[key] != ran_by_then[key]}
    assert rerun == set(), f"completed before the crash, ran again after it: {sorted(rerun)}"


# --- 4. A provider's 429, twice -------------------------------------------------------------


async def test_rate_limited_twice_parks_twice_without_spending_an_attempt_I5(
    tmp_path: Path, children: Children
) -> None:
    log = children.log
    retry_after = 0.1
    async with fleet_engine(tmp_path) as (rt, endpoint):
        worker = children.worker("wr", endpoint)
        await connected(worker)
        wf = rt.register(compile_yaml_text(THROTTLED_YAML, "throttled.yaml"))
        run = await rt.start(wf, {"key": "r1", "retry_after": retry_after}, execution_id="429-1")
        result = await run.result(timeout=DEADLINE)
        journal = await rt.journal(run.id)
        items = await rt.store.list_work_items(execution_id=run.id)

    assert result["answer"] == {"calls": 3, "by": "wr"}
    call = node_records(journal, "call")
    assert shape(call) == [
        ("node_scheduled", 1, 1),
        ("node_parked", 1, 1),
        ("node_parked", 1, 1),
        ("node_completed", 1, 1),
    ]
    parked = [r for r in call if isinstance(r, NodeParked)]
    for n, p in enumerate(parked, start=1):
        assert p.error == f"provider said 429 (call {n})"
        assert p.not_before_ms - p.at_ms == int(retry_after * 1000)
    # Each call came after the park before it had run out.
    completed = call[-1]
    assert parked[1].at_ms >= parked[0].not_before_ms
    assert completed.at_ms >= parked[1].not_before_ms
    assert not any(isinstance(r, NodeFailed) for r in call)
    assert isinstance(journal[-1].record, ExecutionCompleted)
    # One work item, granted three times (the fence grows), parked twice, then completed.
    assert [(i.dispatch, i.attempt, i.status, i.fence, i.parks) for i in items] == [
        (1, 1, "completed", 3, 2)
    ]
    assert [e.worker for e in effects_of(log, "call", "r1")] == ["wr", "wr", "wr"]


# --- 5. Bad input at the engine -------------------------------------------------------------


async def test_bad_frames_at_the_engine_are_refused_while_a_real_worker_serves_on_I10(
    tmp_path: Path, children: Children, zctx: zmq.asyncio.Context
) -> None:
    """The broker-level versions are in test_fleet_broker.py; here the scheduler and journal
    stand behind the broker, and a ``tether worker`` process keeps running executions."""
    async with fleet_engine(tmp_path) as (rt, endpoint):
        good = children.worker("wg", endpoint)
        await connected(good)
        wf = rt.register(compile_yaml_text(CHAIN_YAML, "crash-chain.yaml"))
        done: list[str] = []

        async def served() -> None:
            eid = f"served-{len(done)}"
            run = await rt.start(wf, {"eid": eid, "ms": 0}, execution_id=eid)
            assert (await run.result(timeout=DEADLINE))["x"] == len(STEPS)
            done.append(eid)

        await served()
        raw = RawPeer(zctx, endpoint)
        try:
            # Another protocol version: refused, saying both versions; not registered.
            await raw.send(hello("raw", protocol=PROTOCOL_VERSION + 1))
            err = await raw.expect_error(ERR_PROTOCOL_VERSION)
            assert f"speaks protocol {PROTOCOL_VERSION}" in err.message
            assert f"Hello with protocol {PROTOCOL_VERSION + 1}" in err.message
            await served()

            # Not msgpack at all: bad_frame, with msgspec's description.
            await raw.send_frames(b"\xc1 this is not msgpack")
            err = await raw.expect_error(ERR_BAD_FRAME)
            assert err.message.startswith("bad worker message: "), err
            await served()

            # A registered peer's Result for an item that never existed: refused, by name.
            await raw.send(hello("raw"))
            assert isinstance(await raw.recv(), Welcome)
            await raw.send(Result(work_item_id="ghost/x/1", fence=1, ok=True, output=1))
            ack = await raw.recv()
            assert isinstance(ack, Ack) and not ack.accepted, ack
            assert (ack.work_item_id, ack.fence) == ("ghost/x/1", 1)
            assert "ghost/x/1" in ack.reason
            # ... and one for a real item, already completed by the good worker: the same.
            real = f"{done[0]}/s1/1"
            await raw.send(Result(work_item_id=real, fence=1, ok=True, output=99))
            ack = await raw.recv()
            assert isinstance(ack, Ack) and not ack.accepted, ack
            assert real in ack.reason
            # A bad frame from a registered peer does not unregister it.
            await raw.send_frames(b"\xc1")
            await raw.expect_error(ERR_BAD_FRAME)
            await raw.send(Result(work_item_id="ghost/x/2", fence=3, ok=False, error="boom"))
            ack = await raw.recv()
            assert isinstance(ack, Ack) and not ack.accepted and "ghost/x/2" in ack.reason
            await served()
        finally:
            raw.close()

        assert rt.broken() == {}
        journals = {eid: await rt.journal(eid) for eid in done}
    assert len(journals) == 4
    for eid, journal in journals.items():
        check_journal(journal)
        completed = [e.record for e in journal if isinstance(e.record, NodeCompleted)]
        assert [r.node_id for r in completed] == list(STEPS), eid
        assert [r.output for r in completed] == [1, 2, 3, 4], eid  # the 99 went nowhere
    assert "refused" not in good.stderr() and "Traceback" not in good.stderr()
