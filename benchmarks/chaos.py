"""Chaos: runs submitted over the REST API while random faults hit the engine and the workers.

    python -m benchmarks chaos [--runs 200] [--workers 3] [--faults 20] [--seed 1] [--quick]
                               [--also engine_stop,clock_jump,reply_lost] [--standby]
                               [--all-workers] [--keep DIR]

A ``tether dev`` engine (127.0.0.1, journal on a SQLite file in a temporary directory,
``TETHER_EMBED_WORKERS=0``: every step runs on a worker) and ``--workers`` ``tether worker``
processes. The driver submits ``--runs`` runs of a 4-step chain (``benchmarks.chaos_tools``),
spread over the chaos window, each under an execution id it chooses and retried with the same
id on a connection error or a 5xx (a start is idempotent by id, so nothing starts twice). At
the same time ``--faults`` faults land at random times (uniform gaps, mean ``--gap``): SIGKILL
of the engine (restarted at once on the same journal and ports), SIGKILL of a worker
(restarted under the same worker id), or SIGSTOP of a worker then SIGCONT after 0.2 s to 1.5x
the 5 s lease TTL (so a third of the pauses outlive it). A worker fault always leaves one worker
running (it goes to the engine instead): with every worker stopped at once, for up to 7.5 s,
no runtime could complete a step, and the slowest runs' latency measured that window rather
than the runtime (at 2,000 runs, 175 runs overlapped one). ``--all-workers`` lifts the rule.

``--standby`` keeps a ``tether dev --standby`` beside the engine: a killed engine's restart
is that warm spare taking over the journal (imports and setup done before the kill), and a
new spare is spawned after each takeover.

``--also`` adds kinds to the mix (each lands first, before the usual three, so a short run has
it): ``engine_stop`` SIGSTOPs the engine for 1.1x to 1.5x the lease TTL, then SIGCONT (every
worker's lease runs out while it is frozen); ``clock_jump`` steps the engine's wall clock 1 to
10 s forward or back (the engine runs under ``benchmarks.chaos_clock``); ``reply_lost`` loses
the reply to the next ``POST /executions`` and to the next result a worker sends, after the
engine committed them (driver and workers talk to the engine through a
``benchmarks.chaos_proxy.ReplyDropper``): the driver resends with the same execution id, the
worker re-sends its unacknowledged result on reconnecting.

After the last fault the driver waits (up to ``--deadline``) for every run to end, then reads
each run's view and journal (``GET /executions/{id}``, ``/events``) and prints: runs lost
(accepted, then unknown), stuck (not ended by the deadline), doubled (a node completed twice in
one journal), wrong (not completed with the ``x`` the chain computes); side effects repeated
(the side-effect log's lines for a node beyond one), and how many of those each ran for a
distinct hand-out the journal holds (explained by a journaled retry); run latency (submit to
``completed_at``) p50/p99/max; the workers' rejoin time after each engine restart (from the
engine's spawn to each worker's re-registration); and the time from the last fault to the last
run's end. Exits
nonzero if a run is lost, stuck, doubled or wrong, or a side effect is unexplained.
"""

from __future__ import annotations

import argparse
import itertools
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc
import httpx
import msgspec

from benchmarks.chaos_check import TERMINAL, RunJournal, read_all, read_effects, verdict
from benchmarks.chaos_cluster import LEASE_TTL_SECS, Cluster
from benchmarks.chaos_proxy import ReplyDropper
from benchmarks.chaos_report import failed, report
from benchmarks.chaos_tail import keep
from benchmarks.chaos_tools import CHAIN_YAML, WORKFLOW_ID
from benchmarks.machine import banner, describe
from tether.ir import compile_yaml_text

#: Fault kinds and their weights (the outside run's mix: about 30% engine kills).
FAULTS: Final = {"engine_kill": 3, "worker_kill": 3, "worker_stop": 4}
#: Kinds ``--also`` adds, with their weights. Off by default: an engine stop holds every run
#: for a lease TTL, and the others need a proxy or a launcher around the engine.
EXTRA_FAULTS: Final = {"engine_stop": 2, "clock_jump": 3, "reply_lost": 3}
#: The marker of a worker's Result frame (its msgpack ``type`` tag), whose Ack is to be lost.
RESULT_MARKER: Final = b"\xa6result"
#: A submission retried this long (engine down, restarting) is given up and reported.
SUBMIT_DEADLINE_SECS: Final = 120.0
#: Submissions in flight at once; more wait their turn (the chain's pacing still holds).
SUBMITTERS: Final = 64
POLL_SECS: Final = 0.25


class Driver:
    """Submits the runs; remembers each accepted one's ``x0`` and first submit time."""

    def __init__(self, url: str, host: str, prefix: str = "run") -> None:
        self.url = url
        self.prefix = prefix
        #: The engine's own ``host:port``: through the reply-losing proxy, the Host header
        #: still names the engine (it refuses names it does not answer to).
        self.host = host
        self.submitted: dict[str, tuple[int, float]] = {}
        self.refused: list[str] = []
        self.retries = 0

    async def submit_all(self, runs: int, chaos: Chaos | Calm, faults: float, gap: float) -> None:
        """Submit in step with the faults, so runs are in flight at every fault however long
        the engine restarts take: run ``i`` waits for fault ``i * faults // runs``."""
        pace = faults * gap / max(runs, 1)  # the mean gap between submissions
        limiter = anyio.Semaphore(SUBMITTERS)
        async with (
            httpx.AsyncClient(
                base_url=self.url, timeout=10.0, headers={"Host": self.host}
            ) as client,
            anyio.create_task_group() as tg,
        ):
            for i in range(runs):
                await chaos.reached(int(i * faults // max(runs, 1)))
                await limiter.acquire()
                tg.start_soon(self._submit, client, limiter, f"{self.prefix}{i:05d}", i)
                await anyio.sleep(chaos.rng.uniform(0, 2 * pace))

    async def _submit(
        self, client: httpx.AsyncClient, limiter: anyio.Semaphore, run_id: str, x0: int
    ) -> None:
        body = {"workflow_id": WORKFLOW_ID, "input": {"run": run_id, "x": x0},
                "execution_id": run_id}  # fmt: skip
        t0 = time.time()
        try:
            with anyio.move_on_after(SUBMIT_DEADLINE_SECS):
                while True:
                    try:
                        resp = await client.post("/executions", json=body)
                        if resp.status_code < 500:
                            break
                    except httpx.TransportError:
                        pass  # engine down or killed mid-request: the same id again
                    self.retries += 1
                    await anyio.sleep(0.1)
                if resp.status_code == 201:
                    self.submitted[run_id] = (x0, t0)
                    return
            self.refused.append(run_id)
        finally:
            limiter.release()


class Calm:
    """No faults: the fault-free baseline's pacer (submissions at the chaos phase's pace)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def reached(self, n: int) -> None:
        return None


async def fault_free(
    args: argparse.Namespace, cluster: Cluster, rng: random.Random
) -> tuple[dict[str, float], dict[str, RunJournal]]:
    """Run ``args.baseline`` runs on the same cluster at the chaos phase's submission pace,
    with no fault: the latency the chaos phase's is compared with, in the same invocation."""
    n = args.baseline
    driver = Driver(cluster.url, f"127.0.0.1:{cluster.port}", prefix="calm")
    await driver.submit_all(n, Calm(rng), args.faults * n / max(args.runs, 1), args.gap)
    await wait_all_ended(cluster.url, list(driver.submitted), args.deadline)
    journals = await read_all(cluster.url, list(driver.submitted))
    calm = verdict(driver.submitted, journals, Counter(), time.time())
    bad = [r for k in ("lost", "stuck", "doubled", "wrong") for r in calm[k]]
    if bad:
        raise SystemExit(f"the fault-free baseline went wrong: {bad[:5]}")
    return calm["latency_s"], journals


class Chaos:
    """Injects the faults; ``last`` is when the last one ended (its signal, or its SIGCONT)."""

    def __init__(
        self,
        cluster: Cluster,
        rng: random.Random,
        kinds: dict[str, int],
        proxies: tuple[ReplyDropper, ReplyDropper] | None = None,
        all_workers: bool = False,
    ) -> None:
        self.cluster = cluster
        self.rng = rng
        self.kinds = kinds
        self.proxies = proxies
        self.all_workers = all_workers
        self.paused: set[int] = set()
        self.counts: dict[str, int] = dict.fromkeys(kinds, 0)
        self.clock_offset = 0.0  # seconds the engine's wall clock is off the real one
        #: (real time, offset from then on) for each clock jump, in order.
        self.jumps: list[tuple[float, float]] = [(0.0, 0.0)]
        self.long_pauses = 0
        #: (worker index, SIGSTOP time, SIGCONT time): a stopped worker rejoins only after.
        self.pauses: list[tuple[int, float, float]] = []
        self.last = 0.0
        self.injected = 0
        #: (began, ended, kind, target) per fault, for ``--keep``: a kill ends when its
        #: process is back (the engine healthy; a worker spawned), a stop at its SIGCONT.
        self.log: list[tuple[float, float, str, str]] = []
        extra = [k for k in kinds if k not in FAULTS]
        # A worker's pause last: a kill just after it could find no other worker running.
        others = [k for k in FAULTS if k != "worker_stop"]
        self._firsts = [*rng.sample(extra, len(extra)), *rng.sample(others, len(others)),
                        "worker_stop"]  # fmt: skip
        self._next = anyio.Event()

    async def reached(self, n: int) -> None:
        """Return once ``n`` faults have been injected."""
        while self.injected < n:
            await self._next.wait()

    async def run(self, faults: int, gap: float) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(faults):
                await anyio.sleep(self.rng.uniform(0, 2 * gap))
                await self.one(tg)
                self.injected += 1
                self._next.set()
                self._next = anyio.Event()

    async def one(self, tg: anyio.abc.TaskGroup) -> None:
        free = [i for i in range(self.cluster.workers) if i not in self.paused]
        kind = self.rng.choices(list(self.kinds), weights=list(self.kinds.values()))[0]
        if self.injected < len(self._firsts):  # every kind once first, so a short run has each
            kind = self._firsts[self.injected]
        if kind.startswith("worker_") and len(free) < (1 if self.all_workers else 2):
            # Leave a worker running: with none, every run waits for the first to come back
            # whatever the engine does, and the latency measures the fault, not the runtime.
            kind = "engine_kill"
        self.counts[kind] += 1
        self.last = time.time()
        target = "engine"
        if kind == "engine_kill":
            assert self.cluster.engine is not None
            await self.cluster.engine.killed()
            await self.cluster.start_engine()
        elif kind == "worker_kill":
            i = self.rng.choice(free)
            target = f"w{i}"
            proc = self.cluster.worker_procs[i]
            assert proc is not None
            await proc.killed()
            # Not waiting for its Welcome: the engine may be down, and that is chaos too.
            await self.cluster.start_worker(i, wait=False)
        elif kind == "engine_stop":
            await self.engine_stop()
        elif kind == "clock_jump":
            self.clock_jump()
        elif kind == "reply_lost":
            assert self.proxies is not None
            for proxy in self.proxies:
                proxy.arm()
        else:
            i = self.rng.choice(free)
            secs = self.rng.uniform(0.2, 1.5 * LEASE_TTL_SECS)
            self.long_pauses += secs > LEASE_TTL_SECS
            self.paused.add(i)
            tg.start_soon(self.pause, i, secs)
            return  # logged at its SIGCONT
        self.log.append((self.last, time.time(), kind, target))

    async def engine_stop(self) -> None:
        """Freeze the engine past every lease's TTL, then let it go on (inline: no other fault
        lands on a frozen engine)."""
        engine = self.cluster.engine
        assert engine is not None
        engine.signal(signal.SIGSTOP)
        try:
            await anyio.sleep(self.rng.uniform(1.1, 1.5) * LEASE_TTL_SECS)
        finally:
            engine.signal(signal.SIGCONT)
            self.last = max(self.last, time.time())

    def clock_jump(self) -> None:
        """Step the engine's wall clock 1 to 2 lease TTLs forward or back (rename: atomic)."""
        path = self.cluster.clock_offset
        assert path is not None
        step = self.rng.uniform(0.2, 2.0) * LEASE_TTL_SECS * self.rng.choice((-1, 1))
        self.clock_offset += step
        self.jumps.append((time.time(), self.clock_offset))
        scratch = path.with_suffix(".new")
        scratch.write_text(repr(self.clock_offset))
        scratch.replace(path)

    def real_time(self, engine_time: float) -> float:
        """The driver's time when the engine's clock read ``engine_time``: the latest clock
        era in which that reading could be taken (after a jump back, a reading may occur in
        two; the later is taken). Exact to the jump file's 20 ms re-read."""
        eras = [*self.jumps, (float("inf"), 0.0)]
        for (start, offset), (end, _) in reversed(list(itertools.pairwise(eras))):
            if start <= engine_time - offset < end:
                return engine_time - offset
        return engine_time - self.clock_offset

    async def pause(self, i: int, secs: float) -> None:
        proc = self.cluster.worker_procs[i]
        assert proc is not None
        proc.signal(signal.SIGSTOP)
        stopped = time.time()
        try:
            await anyio.sleep(secs)
        finally:
            proc.signal(signal.SIGCONT)
            self.pauses.append((i, stopped, time.time()))
            self.log.append((stopped, time.time(), "worker_stop", f"w{i}"))
            self.last = max(self.last, time.time())
            self.paused.discard(i)


async def statuses(client: httpx.AsyncClient) -> dict[str, str]:
    """Every execution's status, page by page."""
    out: dict[str, str] = {}
    offset = 0
    while True:
        resp = await client.get("/executions", params={"limit": 1000, "offset": offset})
        resp.raise_for_status()
        page = resp.json()["executions"]
        out.update({e["execution_id"]: e["status"] for e in page})
        if len(page) < 1000:
            return out
        offset += 1000


async def wait_all_ended(url: str, run_ids: list[str], deadline: float) -> bool:
    """Poll until every run has ended; False if the deadline passed first."""
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        with anyio.move_on_after(deadline):
            while True:
                seen = await statuses(client)
                if all(seen.get(r) in TERMINAL for r in run_ids):
                    return True
                await anyio.sleep(POLL_SECS)
    return False


async def scenario(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    kinds = {**FAULTS, **{k: EXTRA_FAULTS[k] for k in args.also}}
    cluster = Cluster(tmp, args.workers, args.concurrency, standby=args.standby)
    proxies = None
    if "reply_lost" in kinds:
        proxies = (ReplyDropper(cluster.port, b"POST /executions"),
                   ReplyDropper(cluster.worker_port, RESULT_MARKER))  # fmt: skip
        cluster.worker_connect_port = proxies[1].port
    if "clock_jump" in kinds:
        cluster.clock_offset = tmp / "clock-offset"
    try:
        async with anyio.create_task_group() as proxying:
            for proxy in proxies or ():
                proxying.start_soon(proxy.serve)
            result = await _scenario(args, cluster, rng, kinds, proxies)
            proxying.cancel_scope.cancel()
        return result
    finally:
        cluster.stop_all()


async def _scenario(
    args: argparse.Namespace,
    cluster: Cluster,
    rng: random.Random,
    kinds: dict[str, int],
    proxies: tuple[ReplyDropper, ReplyDropper] | None,
) -> dict[str, Any]:
    submit_url = cluster.url if proxies is None else f"http://127.0.0.1:{proxies[0].port}"
    try:
        await cluster.start_engine()
        for i in range(args.workers):
            await cluster.start_worker(i)
        ir = msgspec.to_builtins(compile_yaml_text(CHAIN_YAML))
        async with httpx.AsyncClient(base_url=cluster.url) as client:
            (await client.post("/workflows", json={"ir": ir})).raise_for_status()
        baseline, calm_journals = ({}, {})
        if args.baseline:
            baseline, calm_journals = await fault_free(args, cluster, rng)
        driver = Driver(submit_url, f"127.0.0.1:{cluster.port}")
        chaos = Chaos(cluster, rng, kinds, proxies, args.all_workers)
        t0 = time.time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(driver.submit_all, args.runs, chaos, args.faults, args.gap)
            tg.start_soon(chaos.run, args.faults, args.gap)
        chaos_s = time.time() - t0
        ended = await wait_all_ended(cluster.url, list(driver.submitted), args.deadline)
        journals = await read_all(cluster.url, list(driver.submitted))
    finally:
        cluster.stop_all()
    if args.keep is not None:
        keep(args.keep, driver.submitted, journals, chaos.log, chaos.real_time, cluster)
    rejoins = cluster.rejoins(lambda i, t: any(w == i and a <= t <= b for w, a, b in chaos.pauses))
    result = verdict(driver.submitted, {**calm_journals, **journals},
                     read_effects(cluster.effects), chaos.last, chaos.real_time)  # fmt: skip
    result.update(
        baseline_latency_s=baseline, all_ended=ended, refused=driver.refused,
        submit_retries=driver.retries,
        faults=chaos.counts, long_pauses=chaos.long_pauses, chaos_s=chaos_s,
        replies_dropped={"api": proxies[0].dropped, "worker": proxies[1].dropped}
        if proxies else None, clock_offset_s=chaos.clock_offset,
        results_unacked_at_rejoin=cluster.results_unacked_at_rejoin(),
        wall_s=time.time() - t0, rejoin_s=sorted(s for s, _ in rejoins),
        rejoin_after_health_s=sorted(h for _, h in rejoins),
    )  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gap", type=float, default=1.0, help="mean seconds between faults")
    parser.add_argument("--concurrency", type=int, default=8, help="tools at once per worker")
    parser.add_argument("--deadline", type=float, default=300.0,
                        help="seconds after the last fault for every run to end")  # fmt: skip
    parser.add_argument("--baseline", type=int, default=None, metavar="N",
                        help="fault-free runs first, for the latency to compare with "
                        "(default: min(runs, 200); 0: none)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="20 runs, 2 workers, 4 faults")
    parser.add_argument("--standby", action="store_true",
                        help="a `tether dev --standby` waits beside the engine and takes over "
                        "when it is killed (a new one is spawned after each takeover)")  # fmt: skip
    parser.add_argument("--all-workers", action="store_true",
                        help="worker faults may stop or kill the last running worker "
                        "(by default one is left running: the engine takes the fault)")  # fmt: skip
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="write each run's records, the faults and the processes' logs "
                        "to DIR, for `python -m benchmarks.chaos_tail DIR`")  # fmt: skip
    parser.add_argument("--also", default="", metavar="KIND[,KIND]",
                        help=f"more fault kinds: {', '.join(EXTRA_FAULTS)}")  # fmt: skip
    args = parser.parse_args(argv)
    args.also = [k for k in args.also.split(",") if k]
    unknown = [k for k in args.also if k not in EXTRA_FAULTS]
    if unknown:
        parser.error(f"--also: unknown fault kind {unknown[0]!r}; known: {', '.join(EXTRA_FAULTS)}")
    if args.quick:
        args.runs, args.workers, args.faults = 20, 2, 4
    if args.baseline is None:
        args.baseline = min(args.runs, 200)
    print(
        f"chaos: {args.runs} runs of a 4-step chain, {args.workers} `tether worker` x "
        f"{args.concurrency}, {args.faults} faults (mean gap {args.gap:g} s), seed {args.seed}"
        + (", the engine with a `tether dev --standby` beside it" if args.standby else "")
    )
    machine = describe()
    print(banner(machine))
    with tempfile.TemporaryDirectory(prefix="tether-chaos-") as tmp:
        result = anyio.run(scenario, args, Path(tmp))
    report(result)
    if failed(result):
        raise SystemExit(1)
    return {"scenario": "chaos", "machine": machine, "args": vars(args), **result}


if __name__ == "__main__":
    main()
    sys.exit(0)
