"""Faults survived fast (issue 19, items 1-4), with real ``tether worker`` processes: a worker
rejoins a restarted engine at once, an adopted lease expires a silence after its grant through a
storm of engine restarts, a worker restarted under the same id gives back its predecessor's
leases at once, and a lease lost to a dead worker spends none of the node's attempts up to its
cap.

Every wait is for an event (a log line, a journal record, a process exit), polled with a
deadline. Where a test shows that something happens *without* waiting out a timer, the timer
(heartbeat interval, lease TTL) is set far beyond the test's deadline, so a pass cannot come
from that timer: no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest
from crash_tools import HOLD_UNTIL_YAML, killer_yaml
from fleet_processes import (
    DEADLINE,
    Children,
    connected,
    effects_of,
    eventually,
    fleet_engine,
    node_records,
    shape,
)

from tether.ir import compile_yaml_text
from tether.persistence.urls import open_store
from tether.runtime.internals import runtime_internals
from tether.runtime.records import CAUSE_LEASE_LOST, NodeCompleted, NodeFailed
from tether.runtime.scheduler import ADOPTION_GRACE_MS
from tether.runtime.scheduler_messages import GetLeases, LiveLease
from tether.testing import VirtualClock, check_replay
from tether.testing.loopback import free_loopback_port as free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


async def leases_of(rt: object) -> dict[str, LiveLease]:
    leases = await runtime_internals(rt).scheduler.ask(GetLeases())  # type: ignore[arg-type]
    assert isinstance(leases, dict)
    return leases


def release(key: str, log: Path) -> None:
    """Let ``hold_until(key)`` return (the file ``crash_tools.release_path`` names)."""
    log.with_name(f"release-{key}").touch()


# --- item 1: a worker rejoins a restarted engine at once ---------------------------------------


async def test_worker_rejoins_a_restarted_engine_without_waiting_for_a_heartbeat(
    tmp_path: Path, children: Children
) -> None:
    """Heartbeats every 30 s, so only the worker's own watch on its connection can bring it
    back within the 20 s this test waits: it says Hello as soon as ZeroMQ reconnects (at most
    250 ms apart) and the new engine life welcomes it. Its lease, claimed in that Hello, stays
    its own: the node completes on attempt 1 with no failure in the journal."""
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    log = children.log
    slow = {"ttl_ms": 60_000, "heartbeat_ms": 30_000}
    wa = children.worker("wa", endpoint)
    async with fleet_engine(tmp_path, endpoint=endpoint, **slow) as (rt, _):
        await connected(wa)
        wf = rt.register(compile_yaml_text(HOLD_UNTIL_YAML, "hold.yaml"))
        run = await rt.start(wf, {"key": "r1"}, execution_id="rejoin-1")
        await eventually(lambda: effects_of(log, "start", "r1"), "the node to start on wa")
    # The engine is gone (its port closed); the worker keeps running its tool.
    assert wa.alive()
    async with fleet_engine(tmp_path, endpoint=endpoint, **slow) as (rt, _):
        await eventually(
            lambda: "re-registered with engine" in wa.stderr(),
            "wa to rejoin the new engine life",
            timeout=20.0,
        )
        leases = await leases_of(rt)
        assert list(leases) == ["rejoin-1/hold/1"] and leases["rejoin-1/hold/1"].owner == "wa"
        assert not leases["rejoin-1/hold/1"].adopted  # claimed in the Hello
        release("r1", log)
        state = await rt.wait(run.id, timeout=DEADLINE)
        journal = await rt.journal(run.id)
    assert state.status == "completed" and state.data["held"]["by"] == "wa"
    assert shape(node_records(journal, "hold")) == [
        ("node_scheduled", 1, 1),
        ("node_completed", 1, 1),
    ]
    assert "life " in wa.stderr()  # the log names the engine life it joined


# --- item 2: a storm of engine restarts cannot keep a dead worker's lease alive ----------------

#: The grace a restarted engine gives an adopted lease for its worker to rejoin (seconds).
GRACE = ADOPTION_GRACE_MS / 1000


async def test_adopted_lease_expires_a_silence_after_its_grant_through_a_storm_of_restarts_I5(
    tmp_path: Path, children: Children
) -> None:
    """The engine runs on a virtual clock (lease TTL 5 s, silence 1.5 s, the default grace
    0.5 s). Its worker is SIGKILLed holding the lease, then the engine restarts four times,
    each life starting 0.3 s later on the clock: each adopts the lease expiring at the later
    of a silence after its grant (as a connected worker silent that long would lose it) and a
    grace from its own start for a live worker to rejoin (the last life's), not at the
    persisted TTL (a life too short to see its worker stop made the step wait out the whole
    TTL) and never with a fresh TTL (restarts every few seconds kept it alive for ever). The
    life that passes that expiry reclaims it; the node runs again on another worker, and the
    loss spends no attempt."""
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    log = children.log
    t0 = 1_767_225_600.0
    timing = {"ttl_ms": 5_000, "heartbeat_ms": 1_000, "silence_ms": 1_500}
    wa = children.worker("wa", endpoint)
    async with fleet_engine(tmp_path, VirtualClock(t0), endpoint=endpoint, **timing) as (rt, _):
        await connected(wa)
        wf = rt.register(compile_yaml_text(HOLD_UNTIL_YAML, "hold.yaml"))
        run_id = (await rt.start(wf, {"key": "s1"}, execution_id="storm-1")).id
        await eventually(lambda: effects_of(log, "start", "s1"), "the node to start on wa")
        os.kill(wa.pid, signal.SIGKILL)
        assert wa.proc.wait(timeout=DEADLINE) == -signal.SIGKILL
    store = await open_store(f"sqlite:///{tmp_path / 'engine.db'}", readonly=True)
    try:
        [row] = [i for i in await store.open_work_items() if i.status == "leased"]
    finally:
        await store.close()
    assert row.lease_expires_ms is not None
    persisted = row.lease_expires_ms / 1000
    assert persisted == t0 + 5.0

    for life in range(1, 5):  # restarts 0.3 s apart on the clock, each short of its expiry
        clock = VirtualClock(t0 + life * 0.3)
        async with fleet_engine(tmp_path, clock, endpoint=endpoint, **timing) as (rt, _):
            lease = (await leases_of(rt))[row.work_item_id]
            expected = max(t0 + 1.5, t0 + life * 0.3 + GRACE)  # the fleet's silence, the grace
            assert lease.adopted and lease.expires_at == expected, (life, lease.expires_at)
            assert lease.expires_at < persisted

    clock = VirtualClock(t0 + 2.5)  # past it (well short of the TTL), a live worker around
    wb = children.worker("wb", endpoint)
    async with fleet_engine(tmp_path, clock, endpoint=endpoint, **timing) as (rt, _):
        await connected(wb)
        lease = (await leases_of(rt))[row.work_item_id]
        # Past its expiry: it gets only the grace for its worker to come back, from now.
        assert lease.expires_at == pytest.approx(t0 + 2.5 + GRACE)
        # The scheduler wakes at that expiry, not at its next quarter-TTL sweep (1.25 s).
        with anyio.fail_after(DEADLINE):
            await clock.sleeping_until(clock.monotonic() + GRACE)
        clock.advance(GRACE)
        await eventually(lambda: effects_of(log, "start", "s1")[1:], "the retry to start on wb")
        release("s1", log)
        state = await rt.wait(run_id, timeout=DEADLINE)
        journal = await rt.journal(run_id)
    assert state.status == "completed"
    hold = node_records(journal, "hold")
    assert shape(hold) == [
        ("node_scheduled", 1, 1),
        ("node_failed", 1, 1),
        ("node_scheduled", 2, 2),
        ("node_completed", 2, 2),
    ]
    failed = hold[1]
    assert isinstance(failed, NodeFailed) and failed.cause == CAUSE_LEASE_LOST
    assert "no heartbeat from wa" in failed.error
    assert [e.worker for e in effects_of(log, "done", "s1")] == ["wb"]


async def until_reclaimed(rt: object, execution_id: str) -> None:
    """Wait until the scheduler has reclaimed the run's lease (it is closing or gone)."""

    async def reclaimed() -> bool:
        held = [lease for lease in (await leases_of(rt)).values()
                if lease.row.execution_id == execution_id]  # fmt: skip
        return all(lease.closing for lease in held)

    with anyio.fail_after(DEADLINE):
        while not await reclaimed():
            await anyio.sleep(0.02)


async def test_each_adopted_lease_is_reclaimed_at_its_own_expiry_not_a_later_sweep_I5(
    tmp_path: Path, children: Children
) -> None:
    """Two leases of a SIGKILLed worker, granted 0.3 s apart on the engine's virtual clock,
    are adopted by a restarted engine expiring a silence (1.5 s) after each grant. The
    scheduler reclaims the first at its expiry and then wakes at the second's, not at its next
    quarter-TTL sweep 1.25 s later (in the chaos suite a stopped worker's later leases waited
    up to that long once the first had gone)."""
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    log = children.log
    t0 = 1_767_225_600.0
    timing = {"ttl_ms": 5_000, "heartbeat_ms": 1_000, "silence_ms": 1_500}
    wa = children.worker("wa", endpoint, concurrency=2)
    clock = VirtualClock(t0)
    async with fleet_engine(tmp_path, clock, endpoint=endpoint, **timing) as (rt, _):
        await connected(wa)
        wf = rt.register(compile_yaml_text(HOLD_UNTIL_YAML, "hold.yaml"))
        await rt.start(wf, {"key": "e1"}, execution_id="each-1")
        await eventually(lambda: effects_of(log, "start", "e1"), "e1 to start on wa")
        clock.advance(0.3)
        await rt.start(wf, {"key": "e2"}, execution_id="each-2")
        await eventually(lambda: effects_of(log, "start", "e2"), "e2 to start on wa")
        os.kill(wa.pid, signal.SIGKILL)
        assert wa.proc.wait(timeout=DEADLINE) == -signal.SIGKILL

    clock = VirtualClock(t0 + 0.4)  # restarted well within both silences
    async with fleet_engine(tmp_path, clock, endpoint=endpoint, **timing) as (rt, _):
        by_run = {lease.row.execution_id: lease for lease in (await leases_of(rt)).values()}
        assert by_run["each-1"].expires_at == pytest.approx(t0 + 1.5)
        assert by_run["each-2"].expires_at == pytest.approx(t0 + 1.8)
        clock.advance(1.1 + 1e-6)
        await until_reclaimed(rt, "each-1")
        assert not (await leases_of(rt))[by_run["each-2"].work_item_id].closing
        clock.advance(0.3)  # the second's expiry, well short of a sweep
        await until_reclaimed(rt, "each-2")


# --- item 3: a worker restarted under the same id gives back its predecessor's leases ---------


async def test_a_new_process_under_a_worker_id_gives_back_its_predecessors_leases_at_once(
    tmp_path: Path, children: Children
) -> None:
    """The worker dies while the engine is down (so no engine saw its connection close), and
    its lease was granted with a 60 s TTL and silence, far past this test's deadline. A new
    process under the same worker id joins the restarted engine: its Hello claims nothing, so
    the lease is reclaimed at once. Before, the new process took the lease over and never
    heartbeated it, so it waited out the TTL."""
    log = children.log
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    slow = {"ttl_ms": 60_000, "heartbeat_ms": 1_000, "silence_ms": 60_000}
    first = children.worker("wa-1", endpoint, worker_id="wa")
    async with fleet_engine(tmp_path, endpoint=endpoint, **slow) as (rt, _):
        await connected(first)
        wf = rt.register(compile_yaml_text(HOLD_UNTIL_YAML, "hold.yaml"))
        run_id = (await rt.start(wf, {"key": "n1"}, execution_id="newlife-1")).id
        await eventually(lambda: effects_of(log, "start", "n1"), "the node to start")
    os.kill(first.pid, signal.SIGKILL)
    assert first.proc.wait(timeout=DEADLINE) == -signal.SIGKILL

    async with fleet_engine(tmp_path, endpoint=endpoint, **slow) as (rt, _):
        second = children.worker("wa-2", endpoint, worker_id="wa")
        await connected(second)
        starts = await eventually(
            lambda: effects_of(log, "start", "n1")[1:], "the retry to start", timeout=20.0
        )
        assert starts[0].pid == second.pid
        release("n1", log)
        state = await rt.wait(run_id, timeout=DEADLINE)
        journal = await rt.journal(run_id)
        await check_replay(rt, run_id)
    assert state.status == "completed"
    result = state.data
    assert result["held"] == {"by": "wa-2", "pid": second.pid}
    hold = node_records(journal, "hold")
    assert shape(hold) == [
        ("node_scheduled", 1, 1),
        ("node_failed", 1, 1),
        ("node_scheduled", 2, 2),
        ("node_completed", 2, 2),
    ]
    failed = hold[1]
    assert isinstance(failed, NodeFailed)
    assert failed.cause == CAUSE_LEASE_LOST and failed.error_type == "LeaseExpired"
    assert "came back as a new process" in failed.error, failed.error
    # max_attempts is 1: the lease loss spent no attempt, or the run would have failed.


# --- item 4: lease losses spend no attempt, up to a cap ---------------------------------------


async def test_lease_losses_spend_no_attempt_up_to_the_cap_then_the_node_is_stopped(
    tmp_path: Path, children: Children
) -> None:
    """A tool that SIGKILLs its own worker: with ``max_attempts: 1`` and ``max_lease_losses:
    2``, two losses then a success completes (before, the first loss failed the run); three
    losses in a row fail it, the third counted as its one attempt. The journal says which
    kind of failure each was, and replaying it gives the live state (I2)."""
    log = children.log
    async with fleet_engine(tmp_path) as (rt, endpoint):
        ok = rt.register(compile_yaml_text(killer_yaml(2, 1, 2), "k2.yaml"))
        stopped = rt.register(compile_yaml_text(killer_yaml(3, 1, 2), "k3.yaml"))
        workers = [children.worker(f"w{i}", endpoint) for i in range(3)]
        await connected(*workers)
        run = await rt.start(ok, {"key": "k2"}, execution_id="losses-2")
        result = await run.result(timeout=DEADLINE)
        journal_ok = await rt.journal(run.id)
        await check_replay(rt, run.id)

        more = [children.worker(f"v{i}", endpoint) for i in range(3)]
        await connected(*more)
        run3 = await rt.start(stopped, {"key": "k3"}, execution_id="losses-3")
        state = await rt.wait(run3.id, timeout=DEADLINE)
        journal_stopped = await rt.journal(run3.id)
        await check_replay(rt, run3.id)

    assert result["out"]["calls"] == 3
    kill = node_records(journal_ok, "kill")
    assert shape(kill) == [
        ("node_scheduled", 1, 1),
        ("node_failed", 1, 1),
        ("node_scheduled", 2, 2),
        ("node_failed", 2, 2),
        ("node_scheduled", 3, 3),
        ("node_completed", 3, 3),
    ]
    assert {r.cause for r in kill if isinstance(r, NodeFailed)} == {CAUSE_LEASE_LOST}
    assert isinstance(kill[-1], NodeCompleted)

    assert state.status == "failed"
    failures = [r for r in node_records(journal_stopped, "kill") if isinstance(r, NodeFailed)]
    assert [(f.attempt, f.cause) for f in failures] == [
        (1, CAUSE_LEASE_LOST),
        (2, CAUSE_LEASE_LOST),
        (3, CAUSE_LEASE_LOST),
    ]
    assert len(effects_of(log, "call", "k3")) == 3
    assert "on attempt 3" in (state.error or ""), state.error


# --- a worker that dies is noticed at once, not after a lease TTL ------------------------------


async def test_a_killed_workers_leases_are_reclaimed_when_its_connection_closes(
    tmp_path: Path, children: Children
) -> None:
    """Lease TTL 60 s, past this test's deadline: the dead worker's lease comes back because
    ZeroMQ saw its connection close (the broker's disconnect watch), not by expiry. The loss
    spends no attempt (max_attempts 1)."""
    log = children.log
    async with fleet_engine(tmp_path, ttl_ms=60_000, heartbeat_ms=1_000) as (rt, endpoint):
        wa = children.worker("wa", endpoint)
        await connected(wa)
        wf = rt.register(compile_yaml_text(HOLD_UNTIL_YAML, "hold.yaml"))
        run = await rt.start(wf, {"key": "d1"}, execution_id="dead-1")
        await eventually(lambda: effects_of(log, "start", "d1"), "the node to start on wa")
        wb = children.worker("wb", endpoint)
        await connected(wb)
        os.kill(wa.pid, signal.SIGKILL)
        starts = await eventually(
            lambda: effects_of(log, "start", "d1")[1:], "the retry to start on wb", timeout=20.0
        )
        assert starts[0].pid == wb.pid
        release("d1", log)
        result = await run.result(timeout=DEADLINE)
        journal = await rt.journal(run.id)
    assert result["held"]["by"] == "wb"
    failed = [r for r in node_records(journal, "hold") if isinstance(r, NodeFailed)]
    assert [(f.attempt, f.cause) for f in failed] == [(1, CAUSE_LEASE_LOST)]
    assert "wa its connection closed" in failed[0].error, failed[0].error
