"""Several engines on one Postgres: chain steps/s with 1, 2 and 3 engines beside SQLite.

    python -m benchmarks scale [--url postgresql://postgres@127.0.0.1:5432/test]
                               [--engines 1,2,3] [--runs 150] [--in-flight 20] [--quick]

Each engine is a process of its own (``Runtime(url, shared=True)``, the in-process pool, the
10-step chain of trivial tool steps of ``benchmarks.chain``), with ``--in-flight`` runs going
at once and ``--runs`` runs to do: adding an engine adds load, as adding a host would. The
engines start together (each waits for a "go") on a fresh schema, and the wall time is from
"go" to the last engine's last result. Beside it, one engine on a SQLite file (durability full
both) does the same work.

What bounds it: the CPU seconds each side spent per 1,000 steps, read from ``/proc`` for the
engines' processes and for the Postgres server processes serving them (their backends, found
by application name, plus the WAL writer), and the machine's cores. When adding an engine no
longer adds steps/s while the database's share of the CPU keeps growing, the database (or the
machine it shares with the engines) is the bound; the table says which side is busier.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.machine import banner, describe

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
LENGTH = 10
_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / _TICKS, sum(fields) / _TICKS


# ----------------------------------------------------------------------------- the engines


async def engine_child(url: str, runs: int, in_flight: int) -> None:
    """One engine: say its database backends, wait for "go", run, report, wait for "bye"."""
    from benchmarks.chain import chain_workflow, noop
    from tether import Runtime
    from tether.runtime.internals import runtime_internals

    shared = url.startswith("postgres")
    async with Runtime(url, tools=[noop], max_concurrency=max(64, in_flight), shared=shared,
                       gc_threshold=None) as rt:  # fmt: skip
        wf = rt.register(chain_workflow(LENGTH))
        await runtime_internals(rt).persist(wf)
        backends = await _backends() if shared else []
        print(json.dumps({"ready": True, "backends": backends}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # go
        remaining = runs

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await (await rt.start(wf, {})).result()

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client() for _ in range(in_flight)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stats = getattr(rt.store, "stats", None)
        commits = getattr(stats, "commits", 0)
        print(json.dumps({"wall": wall, "cpu": cpu, "steps": runs * LENGTH,
                          "commits": commits}), flush=True)  # fmt: skip
        await asyncio.to_thread(sys.stdin.readline)  # bye: the backends stay for the sample


async def _backends() -> list[int]:
    import psycopg

    url = os.environ["TETHER_SCALE_URL"]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (f"tether pid {os.getpid()}",),
        )
        return [int(p) for (p,) in await cur.fetchall()]


def _wal_writer(url: str) -> list[int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type IN ('walwriter')"
        ).fetchall()
    return [int(p) for (p,) in rows]


def run_engines(url: str, engines: int, runs: int, in_flight: int) -> dict[str, Any]:
    """``engines`` engine processes on ``url`` at once; steps/s and CPU per 1,000 steps."""
    env = {**os.environ, "TETHER_SCALE_URL": url, "PYTHONPATH": _pythonpath()}
    argv = [sys.executable, "-m", "benchmarks.scale", "--engine-child", url, str(runs),
            str(in_flight)]  # fmt: skip
    children = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(engines)
    ]
    try:
        backends: list[int] = []
        for child in children:
            assert child.stdout is not None
            backends += json.loads(child.stdout.readline())["backends"]
        db_pids = backends + (_wal_writer(url) if backends else [])
        db0 = sum(proc_cpu(p) for p in db_pids)
        busy0, total0 = machine_busy()
        t0 = time.perf_counter()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = []
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"an engine process exited with {child.wait()}")
            reports.append(json.loads(line))
        wall = time.perf_counter() - t0
        db_cpu = sum(proc_cpu(p) for p in db_pids) - db0
        busy1, total1 = machine_busy()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("bye\n")
            child.stdin.flush()
        for child in children:
            child.wait(timeout=60)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    steps = sum(r["steps"] for r in reports)
    engine_cpu = sum(r["cpu"] for r in reports)
    return {
        "engines": engines,
        "steps": steps,
        "seconds": wall,
        "steps_per_s": steps / wall,
        "engine_cpu_ms_per_1k": engine_cpu / steps * 1e6,
        "db_cpu_ms_per_1k": db_cpu / steps * 1e6,
        "engine_cores": engine_cpu / wall,
        "db_cores": db_cpu / wall,
        "commits_per_s": sum(r["commits"] for r in reports) / wall,
        # the whole machine, other work included: how much of its CPU was busy
        "machine_busy": (busy1 - busy0) / max(total1 - total0, 1e-9),
    }


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def _fresh_schema(url: str) -> tuple[str, str]:
    import psycopg

    name = f"tether_scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    option = quote(f"-csearch_path={name}", safe="")
    return name, f"{url}{'&' if '?' in url else '?'}options={option}"


def _drop_schema(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def verdict(rows: list[dict[str, Any]], cores: int) -> str:
    """Where the database bounds throughput, read from the Postgres rows in engine order."""
    best = max(rows, key=lambda r: r["steps_per_s"])
    flat = next(
        (b for a, b in itertools.pairwise(rows) if b["steps_per_s"] < 1.1 * a["steps_per_s"]),
        None,
    )  # fmt: skip
    if flat is None:
        last = rows[-1]
        return (f"steps/s still grew at {last['engines']} engines: the database did not bound "
                f"it yet (Postgres used {last['db_cores']:.2f} of {cores} cores, the machine "
                f"was {last['machine_busy']:.0%} busy)")  # fmt: skip
    side = "the database" if flat["db_cores"] >= flat["engine_cores"] else "the engines"
    if flat["machine_busy"] >= 0.9:
        bound = (f"the machine's {cores} cores were {flat['machine_busy']:.0%} busy (other work "
                 "included): CPU, shared by engines and database, is the bound here, not "
                 "the database's design")  # fmt: skip
    else:
        bound = (f"with CPU to spare ({flat['machine_busy']:.0%} busy), commit latency (round "
                 "trips, WAL flushes) is the bound")  # fmt: skip
    return (
        f"steps/s stopped growing at {flat['engines']} engines (best {best['steps_per_s']:.0f} "
        f"with {best['engines']}): engines {flat['engine_cores']:.2f} cores, Postgres "
        f"{flat['db_cores']:.2f} ({flat['db_cpu_ms_per_1k']:.0f} ms per 1,000 steps; {side} "
        f"spent more per step); {bound}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("TETHER_TEST_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--engines", default="1,2,3")
    parser.add_argument("--runs", type=int, default=150, help="runs per engine")
    parser.add_argument("--in-flight", type=int, default=20, help="runs at once per engine")
    parser.add_argument("--quick", action="store_true", help="30 runs per engine")
    args = parser.parse_args(argv)
    runs = 30 if args.quick else args.runs
    machine = describe()
    cores = os.cpu_count() or 1
    print(f"scale: {runs} runs of {LENGTH} steps per engine, {args.in_flight} in flight each, "
          f"durability full · {banner(machine)}")  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(args.url, connect_timeout=5):
            pass
    except Exception as exc:  # no driver, or no server: say so, measure nothing
        print(f"  skipped: no Postgres at {args.url} ({exc})")
        return {"skipped": str(exc)}
    rows = []
    for n in (int(x) for x in args.engines.split(",")):
        name, url = _fresh_schema(args.url)
        try:
            rows.append(run_engines(url, n, runs, args.in_flight))
        finally:
            _drop_schema(args.url, name)
    with tempfile.TemporaryDirectory() as tmp:
        lite = run_engines(f"sqlite:///{Path(tmp) / 'scale.db'}", 1, runs, args.in_flight)
    print(f"  {'':18} {'steps/s':>8} {'engine ms/1k':>13} {'db ms/1k':>9} "
          f"{'engine cores':>13} {'db cores':>9} {'commits/s':>10} {'machine':>8}")  # fmt: skip
    for r in rows:
        print(f"  postgres x{r['engines']} engine{'s' if r['engines'] > 1 else ' '} "
              f"{r['steps_per_s']:8.0f} {r['engine_cpu_ms_per_1k']:13.0f} "
              f"{r['db_cpu_ms_per_1k']:9.0f} {r['engine_cores']:13.2f} {r['db_cores']:9.2f} "
              f"{r['commits_per_s']:10.0f} {r['machine_busy']:8.0%}")  # fmt: skip
    print(f"  sqlite x1 engine   {lite['steps_per_s']:8.0f} {lite['engine_cpu_ms_per_1k']:13.0f}"
          f" {'-':>9} {lite['engine_cores']:13.2f} {'-':>9} {'-':>10}"
          f" {lite['machine_busy']:8.0%}")  # fmt: skip
    says = verdict(rows, cores)
    print(f"  {says}")
    return {"postgres": rows, "sqlite": lite, "verdict": says, "machine": machine}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--engine-child":
        asyncio.run(engine_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        main()
