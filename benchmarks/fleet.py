"""Fleet dispatch: 10-node chains whose every step runs in a `tether worker` process.

    python -m benchmarks.fleet [--runs 500] [--in-flight 1,50] [--workers 1,2] [--rounds 3]

The engine is ``Runtime(transports=[ZmqFleet("tcp://127.0.0.1:0")], max_concurrency=0)`` on a
fresh SQLite file
(durability ``full``): no in-process pool, so each step is journaled, leased, sent to a worker
process as a Grant and reported back as a Result over ZeroMQ. The workers run ``noop`` from
``benchmarks.chain``; they are started for each measurement, timed only once connected and one
warm-up chain has gone through, then stopped with SIGTERM (they drain and exit 0). Unless
``--concurrency`` is given, each worker gets an even share of the in-flight level as its
concurrency, so one and two workers offer the same number of slots.

Prints steps/s, run p50 latency (per step: run p50 / 10) and the CPU used while timing (this
process: engine, SQLite and ZeroMQ threads, also per step; each worker process, from /proc) for
each number of worker processes and executions in flight. In the same rounds, for each
in-flight level: the same chains through the embedded pool (``benchmarks.chain.measure_chain``),
the bare pyzmq pipelined round trip (``benchmarks.zmq_roundtrip.batched_reader``: ROUTER here,
DEALER echo in another process, as many messages in flight), and the fleet's steps/s as a ratio
of each.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.abc

from benchmarks.chain import chain_workflow, measure_chain, noop
from benchmarks.machine import banner, describe
from benchmarks.zmq_roundtrip import PAYLOAD, batched_reader
from tether import Runtime
from tether.fleet.transport import ZmqFleet
from tether.ir.types import Workflow
from tether.persistence.contract import Durability
from tether.runtime.internals import runtime_internals

ROOT = Path(__file__).resolve().parents[1]
#: What ``tether worker`` logs once the engine has welcomed it.
CONNECTED = "worker_connected"
START_TIMEOUT_SECS = 30.0
STOP_TIMEOUT_SECS = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class WorkerProcess:
    """One ``tether worker`` subprocess serving ``benchmarks.chain``, its stderr in a file."""

    def __init__(self, process: anyio.abc.Process, log: Path, stderr: IO[bytes]) -> None:
        self.process = process
        self.log = log
        self._stderr = stderr

    @classmethod
    async def start(cls, endpoint: str, concurrency: int, log: Path) -> WorkerProcess:
        args = f"--engine {endpoint} --modules benchmarks.chain --concurrency {concurrency}"
        command = [sys.executable, "-m", "tether.cli", "worker", *args.split()]
        stderr = log.open("wb")
        try:
            process = await anyio.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=ROOT,  # `--modules benchmarks.chain` imports from the working directory
            )
        except BaseException:
            stderr.close()
            raise
        return cls(process, log, stderr)

    def cpu_seconds(self) -> float:
        """User + system CPU of the process so far (Linux /proc; NaN elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def connected(self) -> None:
        """Return once the worker logged its Welcome; raise if it exited first."""
        while CONNECTED not in self.output():
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"tether worker exited with {self.process.returncode}:\n{self.output()}"
                )
            await anyio.sleep(0.01)

    async def stop(self) -> None:
        """SIGTERM, then wait for the drained exit; kill it if it does not come."""
        try:
            if self.process.returncode is None:
                self.process.send_signal(signal.SIGTERM)
                with anyio.move_on_after(STOP_TIMEOUT_SECS):
                    await self.process.wait()
                if self.process.returncode is None:
                    self.process.kill()
                    await self.process.wait()
                    raise RuntimeError(f"tether worker did not drain:\n{self.output()}")
            if self.process.returncode != 0:
                raise RuntimeError(
                    f"tether worker exited with {self.process.returncode}:\n{self.output()}"
                )
        finally:
            self._stderr.close()
            await self.process.aclose()


async def stop_all(procs: list[WorkerProcess]) -> None:
    """Stop every worker, then raise the first failure, if any."""
    failures = []
    for proc in procs:
        try:
            await proc.stop()
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


async def drive(rt: Runtime, wf: Workflow, runs: int, in_flight: int) -> tuple[float, list[float]]:
    """Run ``runs`` executions of ``wf``, ``in_flight`` at once; elapsed seconds, latencies."""
    latencies: list[float] = []
    remaining = runs

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            run = await rt.start(wf, {})
            await run.result()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(in_flight):
            tg.start_soon(client)
    return time.perf_counter() - started, latencies


async def measure_fleet(
    db: Path,
    runs: int,
    in_flight: int,
    workers: int,
    concurrency: int,
    durability: Durability,
    length: int = 10,
) -> dict[str, Any]:
    """``runs`` chains, ``in_flight`` at once, every step in one of ``workers`` processes."""
    fleet = ZmqFleet("tcp://127.0.0.1:0")
    async with Runtime(
        f"sqlite:///{db}",
        tools=[noop],
        transports=[fleet],
        max_concurrency=0,
        durability=durability,
    ) as rt:
        wf = rt.register(chain_workflow(length))
        await runtime_internals(rt).persist(wf)
        procs: list[WorkerProcess] = []
        try:
            for i in range(workers):
                log = db.with_name(f"{db.stem}-worker{i}.log")
                procs.append(await WorkerProcess.start(fleet.endpoint, concurrency, log))
            with anyio.fail_after(START_TIMEOUT_SECS):
                for proc in procs:
                    await proc.connected()
                await rt.run(wf, {})  # warm-up: one chain through the fleet
            cpu0, workers_cpu0 = time.process_time(), [p.cpu_seconds() for p in procs]
            elapsed, latencies = await drive(rt, wf, runs, in_flight)
            engine_cpu = time.process_time() - cpu0
            workers_cpu = [p.cpu_seconds() - c for p, c in zip(procs, workers_cpu0, strict=True)]
        finally:
            # Inside the runtime: the workers drain, say Bye to a live engine and exit 0.
            with anyio.CancelScope(shield=True):
                await stop_all(procs)
    return {
        "seconds": elapsed,
        "steps_per_s": runs * length / elapsed,
        "run_p50_ms": statistics.median(latencies) * 1000,
        "engine_cpu": engine_cpu / elapsed,
        "engine_us_per_step": engine_cpu / (runs * length) * 1e6,
        "workers_cpu": [c / elapsed for c in workers_cpu],
    }


def run_all(
    levels: list[int],
    worker_counts: list[int],
    runs: int,
    rounds: int,
    concurrency: int | None,
    durability: Durability,
) -> list[dict[str, Any]]:
    """For each in-flight level, in the same rounds: the fleet with each number of workers,
    the embedded pool, and the bare pyzmq round trip loop with as many in flight."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in levels:
            n = runs if k > 1 else max(10, runs // 10)
            fleet: dict[int, list[dict[str, Any]]] = {w: [] for w in worker_counts}
            embedded, bare = [], []
            for i in range(rounds):
                for w in worker_counts:
                    db = Path(tmp) / f"fleet-{k}-{w}-{i}.db"
                    slots = concurrency or -(-k // w)  # ceil(k / w): every worker gets work
                    fleet[w].append(anyio.run(measure_fleet, db, n, k, w, slots, durability))
                db = Path(tmp) / f"embedded-{k}-{i}.db"
                embedded.append(anyio.run(measure_chain, db, n, k, durability)["steps_per_s"])
                bare.append(anyio.run(batched_reader, max(n * 10, 2000), k))
            embedded_med, bare_med = statistics.median(embedded), statistics.median(bare)
            for w in worker_counts:
                ours = fleet[w]
                rates = [r["steps_per_s"] for r in ours]
                med = statistics.median(rates)
                p50 = statistics.median(r["run_p50_ms"] for r in ours)
                out.append(
                    {
                        "in_flight": k,
                        "workers": w,
                        "concurrency": concurrency or -(-k // w),
                        "runs": n,
                        "steps_per_s": med,
                        "spread": max(rates) - min(rates),
                        "run_p50_ms": p50,
                        "step_p50_ms": p50 / 10,
                        "engine_cpu": statistics.median(r["engine_cpu"] for r in ours),
                        "engine_us_per_step": statistics.median(
                            r["engine_us_per_step"] for r in ours
                        ),
                        "workers_cpu": [
                            statistics.median(r["workers_cpu"][j] for r in ours) for j in range(w)
                        ],
                        "embedded_steps_per_s": embedded_med,
                        "bare_rtt_per_s": bare_med,
                        "vs_bare": med / bare_med,
                        "vs_embedded": med / embedded_med,
                    }
                )
    return out


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="chains per configuration")
    parser.add_argument("--in-flight", type=_ints, default=[1, 50])
    parser.add_argument("--workers", type=_ints, default=[1, 2], help="worker processes")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="per worker (default: in-flight / workers)"
    )
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    args = parser.parse_args(argv)
    print(
        f"10-node chains of noop steps, durability={args.durability}, median of {args.rounds} "
        f"rounds, {os.cpu_count()} CPUs\n"
        f"  fleet: Runtime(max_concurrency=0), every step in a `tether worker` process over "
        f"ZeroMQ on 127.0.0.1 (workers=W x concurrency); cpu: % of one core while timing\n"
        f"  embedded: the same chains through the in-process pool (benchmarks.chain)\n"
        f"  bare zmq: pyzmq ROUTER <-> DEALER echo process, {len(PAYLOAD)}-byte frames, "
        f"as many in flight (benchmarks.zmq_roundtrip.batched_reader)"
    )
    machine = describe()
    print(banner(machine))
    results = run_all(
        args.in_flight, args.workers, args.runs, args.rounds, args.concurrency, args.durability
    )
    for r in results:
        workers_cpu = "+".join(f"{c:.0%}" for c in r["workers_cpu"])
        print(
            f"in_flight={r['in_flight']:4d} workers={r['workers']}x{r['concurrency']:<3d}"
            f" runs={r['runs']:5d}"
            f"  fleet {r['steps_per_s']:7.0f} steps/s (spread {r['spread']:5.0f})"
            f"  run p50 {r['run_p50_ms']:7.1f} ms ({r['step_p50_ms']:5.2f} ms/step)"
            f"  cpu engine {r['engine_cpu']:.0%} ({r['engine_us_per_step']:.0f} us/step)"
            f" workers {workers_cpu}"
            f"  | embedded {r['embedded_steps_per_s']:7.0f} steps/s"
            f"  | bare zmq {r['bare_rtt_per_s']:7.0f} round trips/s"
            f"  | fleet/bare {r['vs_bare']:.3f}  fleet/embedded {r['vs_embedded']:.2f}"
        )
    return {"scenario": "fleet", "machine": machine, "results": results}


if __name__ == "__main__":
    main()
