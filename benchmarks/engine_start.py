"""How long a restarted ``tether dev`` takes from spawn to its worker port and ``/health``.

    python -m benchmarks.engine_start [--rounds 10] [--runs 300]
    python -m benchmarks.engine_start --tree base=/tmp/base --tree new=.   # A/B, one session

While the chaos suite's engine is down no step of any run moves, so each engine life's start
lands in the runs' latency. This spawns ``tether dev`` as ``benchmarks/chaos_cluster.py`` does
(``--modules benchmarks.chaos_tools``, ``TETHER_EMBED_WORKERS=0``, ``TETHER_EMBED_CRON=false``)
on a copy of a journal, times spawn -> its worker port accepting a connection (the journal is
open and workers can rejoin; the HTTP layer may still be loading) and spawn -> ``/health`` 200,
then SIGKILLs it, ``--rounds`` times:

- ``empty``: a journal with the chain workflow registered and no runs;
- ``unfinished``: one left by a SIGKILL with ``--runs`` runs waiting for a worker (a restart
  after a fault recovers each of them before serving).

With several ``--tree NAME=PATH`` (source trees, e.g. ``git archive`` of a base commit), each
round spawns every tree in turn, so an A/B shares the machine's load. Then one start under
``python -X importtime`` per tree: the total import time and where it goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from benchmarks.chaos_tools import CHAIN_YAML, WORKFLOW_ID
from benchmarks.machine import banner, describe, summary
from tether.testing.loopback import free_loopback_port as free_port

ROOT: Final = Path(__file__).resolve().parents[1]
TOOLS_MODULE: Final = "benchmarks.chaos_tools"
START_DEADLINE_SECS: Final = 120.0
POLL_SECS: Final = 0.005
JOURNALS: Final = ("empty", "unfinished")


class Engine:
    """One ``tether dev`` process of a source tree on a journal file, stderr to ``log``."""

    def __init__(self, tree: Path, db: Path, log: Path, python_flags: list[str]) -> None:
        self.port, self.worker_port = free_port(), free_port()
        self.log = log
        env = dict(os.environ)
        env["PYTHONPATH"] = str(tree)
        env.update(TETHER_EMBED_WORKERS="0", TETHER_EMBED_CRON="false", TETHER_LOG_LEVEL="info")
        command = [sys.executable, *python_flags, "-m", "tether.cli", "dev",
                   "--modules", TOOLS_MODULE, "--db", str(db), "--port", str(self.port),
                   "--worker-port", str(self.worker_port)]  # fmt: skip
        self.spawned = time.perf_counter()
        with log.open("wb") as err:
            self.proc = subprocess.Popen(command, env=env, cwd=tree, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def healthy(self) -> tuple[float, float]:
        """Seconds from spawn to the worker port's first accepted connection, and to the first
        ``/health`` 200."""
        port_open: float | None = None
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.perf_counter() - self.spawned < START_DEADLINE_SECS:
                if self.proc.poll() is not None:
                    said = self.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"tether dev exited ({self.proc.returncode}):\n{said}")
                if port_open is None and _accepts("127.0.0.1", self.worker_port):
                    port_open = time.perf_counter() - self.spawned
                try:
                    if client.get("/health").status_code == 200:
                        health = time.perf_counter() - self.spawned
                        return (health if port_open is None else port_open), health
                except httpx.TransportError:
                    pass
                time.sleep(POLL_SECS)
        raise RuntimeError(f"no /health after {START_DEADLINE_SECS:g}s")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def seed_journals(tree: Path, dir: Path, runs: int) -> dict[str, Path]:
    """The two journals every start copies: the workflow alone, and ``runs`` unfinished runs
    left by a SIGKILL (no worker ever connects, so each waits for its first step)."""
    seeds: dict[str, Path] = {}
    ir = msgspec.to_builtins(compile_chain())
    for name in JOURNALS:
        db = dir / name / "j.db"
        db.parent.mkdir()
        engine = Engine(tree, db, dir / f"seed-{name}.err", [])
        engine.healthy()
        with httpx.Client(base_url=engine.url, timeout=30.0) as client:
            client.post("/workflows", json={"ir": ir}).raise_for_status()
            for i in range(runs if name == "unfinished" else 0):
                body = {"workflow_id": WORKFLOW_ID, "input": {"run": f"r{i:05d}", "x": i}}
                client.post("/executions", json=body).raise_for_status()
        if name == "unfinished":
            engine.kill()  # as a chaos fault leaves it: no clean close
        else:
            engine.stop()
        seeds[name] = db
    return seeds


def compile_chain() -> Any:
    from tether.ir import compile_yaml_text

    return compile_yaml_text(CHAIN_YAML)


def fresh_copy(seed: Path, dir: Path) -> Path:
    """A copy of ``seed`` (and its WAL, if a SIGKILL left one) in a new directory."""
    dir.mkdir()
    for suffix in ("", "-wal"):
        src = seed.with_name(seed.name + suffix)
        if src.exists():
            shutil.copyfile(src, dir / src.name)
    return dir / seed.name


def time_start(
    tree: Path, seed: Path, dir: Path, python_flags: list[str] | None = None
) -> tuple[float, float]:
    """Seconds from spawn to the worker port, and to ``/health``, on a copy of ``seed``."""
    db = fresh_copy(seed, dir)
    engine = Engine(tree, db, dir / "engine.err", python_flags or [])
    try:
        return engine.healthy()
    finally:
        engine.kill()


def import_times(log: Path) -> dict[str, Any]:
    """From a ``-X importtime`` stderr: the total, and self time summed per library (tether
    per subpackage), the dearest first."""
    total = 0
    per_lib: dict[str, int] = defaultdict(int)
    top_level: list[tuple[int, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        module = name.strip()
        parts = module.split(".")
        lib = ".".join(parts[:2]) if parts[0] == "tether" else parts[0]
        per_lib[lib] += int(own)
        total += int(own)
        if not name[1:].startswith(" "):  # imported with no import in progress
            top_level.append((int(cumulative), module))
    return {
        "total_ms": total / 1000,
        "by_library_ms": {k: v / 1000 for k, v in sorted(per_lib.items(), key=lambda kv: -kv[1])},
        "top_level_ms": {m: c / 1000 for c, m in sorted(top_level, reverse=True)},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=300, help="unfinished runs in the journal")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="a source tree to start tether dev from (default: this)")  # fmt: skip
    parser.add_argument("--top", type=int, default=12, help="import-time entries to print")
    parser.add_argument("--import-starts", type=int, default=3,
                        help="starts under -X importtime per tree (median shown)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="3 rounds, 50 runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.runs, args.import_starts = 3, 50, 1
    trees = {"this": ROOT}
    if args.tree:
        trees = {}
        for given in args.tree:
            name, _, path = given.partition("=")
            trees[name] = Path(path or name).resolve()
    machine = describe()
    print(f"engine_start: {args.rounds} starts per tree and journal; {args.runs} unfinished runs")
    print(f"  {banner(machine)}")
    result: dict[str, Any] = {"machine": machine, "starts": {}, "imports": {}}
    with tempfile.TemporaryDirectory(prefix="tether-engine-start-") as tmp:
        dir = Path(tmp)
        (dir / "seeds").mkdir()
        seeds = seed_journals(next(iter(trees.values())), dir / "seeds", args.runs)
        times: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        n = 0
        for _ in range(args.rounds):
            for journal in JOURNALS:
                for name, tree in trees.items():
                    n += 1
                    port, health = time_start(tree, seeds[journal], dir / f"s{n}")
                    times[name, journal, "workers"].append(port)
                    times[name, journal, "health"].append(health)
        print(f"\n  spawn -> worker port open, and -> /health 200, seconds (median, spread over "
              f"{args.rounds}):")  # fmt: skip
        print(f"  {'tree':<10} {'journal':<11} {'to':<8} {'median':>7} {'spread':>7} {'min':>6} "
              f"{'max':>6}")  # fmt: skip
        for (name, journal, to), values in sorted(times.items(), key=lambda kv: kv[0][1]):
            s = summary(values)
            print(f"  {name:<10} {journal:<11} {to:<8} {s['median']:7.3f} {s['spread']:7.3f} "
                  f"{min(values):6.3f} {max(values):6.3f}")  # fmt: skip
            key = f"{name}/{journal}" if to == "health" else f"{name}/{journal}/workers"
            result["starts"][key] = {**s, "values": values}
        samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _ in range(args.import_starts):
            for name, tree in trees.items():
                n += 1
                time_start(tree, seeds["empty"], dir / f"s{n}", ["-X", "importtime"])
                samples[name].append(import_times(dir / f"s{n}" / "engine.err"))
        for name, runs in samples.items():
            runs.sort(key=lambda r: float(r["total_ms"]))
            imports = runs[len(runs) // 2]  # the median start's, shown in full
            totals = [float(r["total_ms"]) for r in runs]
            result["imports"][name] = {**imports, "totals_ms": totals}
            print(f"\n  {name}: imports {imports['total_ms']:.0f} ms (python -X importtime, median "
                  f"of {len(runs)} starts, {min(totals):.0f}-{max(totals):.0f}); self time per "
                  "library, ms:")  # fmt: skip
            for lib, ms in list(imports["by_library_ms"].items())[: args.top]:
                print(f"    {lib:<32} {ms:7.1f}")
            print("  imported with no import in progress (cumulative ms):")
            for module, ms in list(imports["top_level_ms"].items())[: args.top]:
                print(f"    {module:<32} {ms:7.1f}")
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n  load at end {result['loadavg_at_end']}")
    return result


if __name__ == "__main__":
    main()
