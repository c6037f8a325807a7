"""A worker that missed its heartbeats gets no new work until it speaks again (issue 19), with
real ``tether worker`` processes: a SIGSTOPped worker is quiet after a few heartbeat intervals
and every step goes to the other worker at its first attempt; continued, it takes work again.

The silence that would reclaim a stopped worker's leases is set beyond the test's deadline, so
a pass cannot come from a reclaim: without the quiet rule the round robin hands the stopped
worker steps that never finish within the deadline.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from crash_tools import CHAIN_YAML, STEPS, read_effects
from fleet_processes import DEADLINE, Children, connected, eventually, fleet_engine

from tether import Runtime
from tether.ir import compile_yaml_text

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: Far beyond DEADLINE: no lease of the stopped worker is reclaimed during the test.
SILENCE_MS = 600_000
RUNS = 4


def quiet(rt: Runtime, worker_id: str) -> bool:
    return any(w["worker_id"] == worker_id and w["quiet"] for w in rt.workers())


def ran_by(log: Path, run_ids: list[str]) -> set[str]:
    keys = {f"{r}/{node}" for r in run_ids for node in STEPS}
    return {e.worker for e in read_effects(log) if e.event == "run" and e.key in keys}


async def run_chains(rt: Runtime, prefix: str) -> list[str]:
    """Start RUNS chains at once, wait for them all; their ids."""
    wf = rt.register(compile_yaml_text(CHAIN_YAML, "chain.yaml"))
    runs = [await rt.start(wf, {"eid": f"{prefix}{i}", "ms": 5}) for i in range(RUNS)]
    for run in runs:
        state = await rt.wait(run.id, timeout=DEADLINE)
        assert state.status == "completed", state
    return [f"{prefix}{i}" for i in range(RUNS)]


async def test_a_stopped_worker_gets_no_new_work_until_it_speaks(
    tmp_path: Path, children: Children
) -> None:
    endpoint = "tcp://127.0.0.1:0"
    async with fleet_engine(
        tmp_path, endpoint=endpoint, ttl_ms=SILENCE_MS, silence_ms=SILENCE_MS
    ) as (rt, bound):
        wa = children.worker("wa", bound, concurrency=4)
        wb = children.worker("wb", bound, concurrency=4)
        await connected(wa, wb)
        await eventually(lambda: len(rt.workers()) == 2, "both workers to join")

        os.kill(wa.pid, signal.SIGSTOP)
        await eventually(lambda: quiet(rt, "wa"), "the stopped worker to be quiet")
        stopped_runs = await run_chains(rt, "stopped-")
        assert ran_by(children.log, stopped_runs) == {"wb"}
        for run_id in await rt.list_executions():
            journal = await rt.journal(run_id.execution_id)
            attempts = {getattr(e.record, "attempt", 1) for e in journal}
            assert attempts == {1}, (run_id, attempts)  # nothing waited on wa, nothing retried

        os.kill(wa.pid, signal.SIGCONT)
        await eventually(lambda: not quiet(rt, "wa"), "the continued worker to speak")
        continued_runs = await run_chains(rt, "continued-")
        assert "wa" in ran_by(children.log, continued_runs)
