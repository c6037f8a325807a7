"""The same durable 10-step chain on Tether, DBOS and LangGraph, each in its own process.

    python -m benchmarks.peers [--runs-seq 200] [--runs-conc 500] [--in-flight 50]
                               [--tether-500-runs 1000] [--rounds 3]
                               [--systems tether,dbos,langgraph] [--out FILE.json]

Each measurement is one child process (``benchmarks.peer_tether``, ``benchmarks.peer_dbos``,
``benchmarks.peer_langgraph``) on a fresh SQLite file in a temporary directory: ``--runs-seq``
chains one at a time, ``--runs-conc`` chains with ``--in-flight`` going at once, and for Tether
only ``--tether-500-runs`` chains with 500 in flight. Every child counts the rows its library
persisted for the steps and the driver fails unless that matches. Rounds interleave the
systems (in a rotating order), so drift on a shared machine hits all of them alike; the table
shows medians, spread (max - min) and the ratios Tether/DBOS and Tether/LangGraph of this
invocation's medians, with the range of the same ratio taken round by round.

The helpers below the driver (``parse_child_args``, ``drive``, ``emit``...) are shared by
the child programs, so they all time, count and report the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("tether", "dbos", "langgraph")
CHILD_MODULE = {system: f"benchmarks.peer_{system}" for system in SYSTEMS}
#: Modules a system's child imports; checked before spawning so a missing peer is skipped.
REQUIRES = {
    "tether": ("tether",),
    "dbos": ("dbos",),
    "langgraph": ("langgraph", "langgraph.checkpoint.sqlite"),
}
INSTALL_HINT = 'pip install -e ".[bench]"'
CHILD_TIMEOUT_SECS = 900.0
STDERR_TAIL_CHARS = 3000
#: SQLite's ``PRAGMA synchronous`` values.
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
FULL = 2


class ChildFailed(RuntimeError):
    """A child exited nonzero, printed no result, or did not persist its steps."""


@dataclass(frozen=True)
class Config:
    name: str
    runs: int
    in_flight: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.runs} runs, {self.in_flight} in flight)"


# --- driver ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    systems = available_systems([s.strip() for s in args.systems.split(",") if s.strip()])
    plan = measurement_plan(args, systems)
    report: dict[str, Any] = {"scenario": "peers", "machine": machine_info()}
    print(
        f"10-step chains, fresh SQLite file per child process, median of {args.rounds} rounds"
        f" (load average at start {report['machine']['loadavg_start']})"
    )
    try:
        samples = run_rounds(plan, args.rounds)
    except ChildFailed as exc:
        print(f"peers: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    report["machine"]["loadavg_end"] = loadavg()
    report["results"] = [summarize(system, config, rows) for (system, config), rows in samples]
    report["ratios"] = compute_ratios(args, samples)
    print_table(report["results"], report["ratios"])
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs-seq", type=int, default=200, help="chains run one at a time")
    parser.add_argument("--runs-conc", type=int, default=500, help="chains run concurrently")
    parser.add_argument("--in-flight", type=int, default=50, help="concurrent chains")
    parser.add_argument(
        "--tether-500-runs", type=int, default=1000, help="Tether chains at 500 in flight (0: skip)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--out", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    unknown = set(args.systems.split(",")) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {','.join(SYSTEMS)}")
    return args


def available_systems(wanted: list[str]) -> list[str]:
    """The wanted systems whose libraries import; a line for each that does not (exit 0)."""
    found = []
    for system in wanted:
        missing = [m for m in REQUIRES[system] if not module_available(m)]
        if missing:
            print(f"skipping {system}: {', '.join(missing)} not importable; {INSTALL_HINT}")
        else:
            found.append(system)
    return found


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a missing parent package of a dotted name
        return False


def measurement_plan(args: argparse.Namespace, systems: list[str]) -> list[tuple[str, Config]]:
    seq = Config("seq", args.runs_seq, 1)
    conc = Config("conc", args.runs_conc, args.in_flight)
    plan = [(system, config) for config in (seq, conc) for system in systems]
    if "tether" in systems and args.tether_500_runs > 0:
        plan.append(("tether", Config("conc500", args.tether_500_runs, 500)))
    return plan


Samples = list[tuple[tuple[str, Config], list[dict[str, Any]]]]


def run_rounds(plan: list[tuple[str, Config]], rounds: int) -> Samples:
    """Every (system, config) once per round, in a rotating order, each in a new process."""
    samples: dict[tuple[str, Config], list[dict[str, Any]]] = {key: [] for key in plan}
    with tempfile.TemporaryDirectory(prefix="tether-peers-") as tmp:
        for i in range(rounds):
            shift = i % max(1, len(plan))  # an empty plan: every system skipped
            for system, config in plan[shift:] + plan[:shift]:
                db = Path(tmp) / f"{system}-{config.name}-{i}.db"
                samples[(system, config)].append(run_child(system, config, db))
                last = samples[(system, config)][-1]
                print(
                    f"  round {i + 1}: {system:9s} {config.label:34s}"
                    f" {last['steps_per_s']:8.0f} steps/s",
                    flush=True,
                )
    return list(samples.items())


def run_child(system: str, config: Config, db: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", CHILD_MODULE[system]]
    command += ["--runs", str(config.runs), "--in-flight", str(config.in_flight), "--db", str(db)]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECS
        )
    except subprocess.TimeoutExpired as exc:
        raise ChildFailed(f"{system} {config.label} timed out after {exc.timeout} s") from exc
    result = last_json_line(done.stdout)
    if done.returncode != 0 or result is None:
        tail = done.stderr[-STDERR_TAIL_CHARS:]
        raise ChildFailed(
            f"{system} {config.label} exited {done.returncode}"
            f"{'' if result else ' without a JSON result'}; stderr tail:\n{tail}"
        )
    if not result.get("persisted_ok"):
        raise ChildFailed(
            f"{system} {config.label} persisted {result.get('persisted_rows')}"
            f" {result.get('persisted_what')}, expected {result.get('expected_rows')}"
        )
    return result


def last_json_line(stdout: str) -> dict[str, Any] | None:
    # A library may log to stdout too; the result is the last line that is a JSON object.
    for line in reversed(stdout.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "steps_per_s" in value:
            return value
    return None


def summarize(system: str, config: Config, rows: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["steps_per_s"] for r in rows]
    return {
        "system": system,
        "config": config.name,
        "runs": config.runs,
        "in_flight": config.in_flight,
        "steps_per_s": statistics.median(rates),
        "spread": max(rates) - min(rates),
        "rounds": rates,
        "run_p50_ms": statistics.median(r["run_p50_ms"] for r in rows),
        "persisted_rows": rows[-1]["persisted_rows"],
        "persisted_what": rows[-1]["persisted_what"],
        "expected_rows": rows[-1]["expected_rows"],
        "durability": durability_label(rows[-1]["pragmas"]),
        "weaker_than_full": rows[-1]["pragmas"]["synchronous"] < FULL,
        "versions": rows[-1].get("versions", {}),
    }


def durability_label(pragmas: dict[str, Any]) -> str:
    sync = SYNCHRONOUS.get(pragmas["synchronous"], str(pragmas["synchronous"]))
    label = f"journal={pragmas['journal_mode']} synchronous={sync}"
    return label if pragmas["synchronous"] >= FULL else f"{label} (WEAKER than FULL)"


def compute_ratios(args: argparse.Namespace, samples: Samples) -> list[dict[str, Any]]:
    """Tether over each peer for each shared config, and Tether at 500 in flight over each
    peer at ``--in-flight``: the ratio of medians, and its range taken round by round."""
    by_key = {(system, config.name): rows for (system, config), rows in samples}
    pairs = [(c, c) for c in ("seq", "conc")]
    pairs.append(("conc500", "conc"))
    out = []
    for ours, theirs in pairs:
        for peer in ("dbos", "langgraph"):
            mine, other = by_key.get(("tether", ours)), by_key.get((peer, theirs))
            if mine and other:
                out.append(ratio(f"tether {ours} / {peer} {theirs}", mine, other))
    return out


def ratio(name: str, mine: list[dict[str, Any]], other: list[dict[str, Any]]) -> dict[str, Any]:
    per_round = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(mine, other, strict=True)]
    median_ratio = statistics.median(r["steps_per_s"] for r in mine) / statistics.median(
        r["steps_per_s"] for r in other
    )
    return {
        "name": name,
        "ratio": median_ratio,
        "per_round_min": min(per_round),
        "per_round_max": max(per_round),
    }


def print_table(results: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'system':10s} {'config':8s} {'runs':>5s} {'in flight':>9s} {'steps/s':>9s}"
        f" {'spread':>7s} {'run p50 ms':>10s} {'persisted/expected':>19s}  durability"
    )
    for r in results:
        persisted = f"{r['persisted_rows']}/{r['expected_rows']}"
        print(
            f"{r['system']:10s} {r['config']:8s} {r['runs']:5d} {r['in_flight']:9d}"
            f" {r['steps_per_s']:9.0f} {r['spread']:7.0f} {r['run_p50_ms']:10.1f}"
            f" {persisted:>19s}  {r['durability']}"
        )
    # What each system's row count counts; it is the same for every config of a system.
    for system, what in {r["system"]: r["persisted_what"] for r in results}.items():
        print(f"  {system} persisted rows: {what}")
    print()
    for r in ratios:
        print(
            f"{r['name']:32s} ratio {r['ratio']:6.2f}"
            f"  (per round {r['per_round_min']:.2f}-{r['per_round_max']:.2f})"
        )


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "loadavg_start": loadavg(),
    }


def loadavg() -> list[float] | None:
    # Other processes on a shared machine skew every figure; the load average records it.
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --- helpers shared by the child programs ---------------------------------------------------


@dataclass(frozen=True)
class ChildArgs:
    runs: int
    in_flight: int
    db: Path


def parse_child_args(argv: list[str] | None, doc: str | None) -> ChildArgs:
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--in-flight", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="a SQLite file that must not exist")
    args = parser.parse_args(argv)
    if args.db.exists():
        parser.error(f"{args.db} exists; each measurement needs a fresh file")
    return ChildArgs(runs=args.runs, in_flight=args.in_flight, db=args.db)


async def drive(
    run_one: Callable[[int], Awaitable[None]], runs: int, in_flight: int
) -> tuple[float, list[float]]:
    """Run ``run_one(0..runs-1)`` keeping ``in_flight`` going at once, as
    ``benchmarks.chain.measure_chain`` does: elapsed seconds and each run's latency."""
    latencies: list[float] = []
    next_run = iter(range(runs))

    async def worker() -> None:
        for i in next_run:  # a shared iterator: each worker takes the next run when free
            t0 = time.perf_counter()
            await run_one(i)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(in_flight):
            tg.create_task(worker())
    return time.perf_counter() - started, latencies


def timing_fields(
    args: ChildArgs, steps_per_run: int, seconds: float, run_p50_ms: float
) -> dict[str, Any]:
    steps = args.runs * steps_per_run
    return {
        "runs": args.runs,
        "in_flight": args.in_flight,
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "run_p50_ms": run_p50_ms,
    }


def p50_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000


def scalar(db: Path, sql: str) -> Any:
    """One value read from ``db`` through a new stdlib connection, after the library under
    test has closed its own: what it persisted, not what it still holds in memory."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


def library_versions(*distributions: str) -> dict[str, str]:
    return {d: importlib.metadata.version(d) for d in distributions}


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
