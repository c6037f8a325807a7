"""Where the chaos suite's slowest runs spent their time: a post-mortem of ``--keep DIR``.

    python -m benchmarks chaos --runs 2000 --faults 200 --keep /tmp/chaos-kept
    python -m benchmarks.chaos_tail /tmp/chaos-kept [--slowest 0.01] [--show 5]

Each of the slowest runs' time is cut at its records (submit, each hand-out, each step's start
and outcome, the end); every stretch longer than ``--stall`` seconds is charged to the faults
that overlap it (``engine_kill``, ``worker_stop``, ``worker_kill``, several, or none). It prints
the seconds each cause cost those runs in all and per run, and the timelines of the very
slowest, with the faults beside them: what to shorten next, measured.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from benchmarks.chaos_check import RunJournal
from benchmarks.chaos_cluster import Cluster

#: A stretch between two of a run's records longer than this is a stall to explain.
STALL_SECS: Final = 0.25
#: A fault explains a stall that begins up to this long after it ended (a restarted engine's
#: recovery, a worker's rejoin, a reclaimed lease's re-dispatch follow it).
AFTERMATH_SECS: Final = 1.5

Fault = tuple[float, float, str, str]  # began, ended, kind, target


def keep(
    out: Path,
    submitted: Mapping[str, tuple[int, float]],
    journals: Mapping[str, RunJournal],
    faults: list[Fault],
    real_time: Callable[[float], float],
    cluster: Cluster,
) -> None:
    """Write what the post-mortem reads to ``out``: each chaos run's submit time and records
    (``runs.jsonl``, times on the driver's clock), the faults (``faults.jsonl``), the engine
    lives (spawned, healthy) and every process's log."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "runs.jsonl").open("w") as f:
        for run_id, (_, t_submit) in submitted.items():
            events = [(real_time(t), *rest) for t, *rest in journals[run_id].events]
            f.write(json.dumps({"run": run_id, "submitted": t_submit, "events": events}) + "\n")
    with (out / "faults.jsonl").open("w") as f:
        for began, ended, kind, target in sorted(faults):
            f.write(json.dumps({"began": began, "ended": ended, "kind": kind,
                                "target": target}) + "\n")  # fmt: skip
    (out / "engine_starts.json").write_text(json.dumps(cluster.engine_starts))
    for log in cluster.dir.glob("*.err"):
        shutil.copy(log, out / log.name)


def load(kept: Path) -> tuple[list[dict[str, Any]], list[Fault]]:
    runs = [json.loads(line) for line in (kept / "runs.jsonl").read_text().splitlines()]
    lines = (kept / "faults.jsonl").read_text().splitlines()
    faults = [(f["began"], f["ended"], f["kind"], f["target"]) for f in map(json.loads, lines)]
    return runs, faults


def latency(run: dict[str, Any]) -> float:
    return max((e[0] for e in run["events"]), default=run["submitted"]) - run["submitted"]


def stalls(run: dict[str, Any], stall: float) -> list[tuple[float, float, str]]:
    """The run's stretches longer than ``stall`` s: (from, to, the record that ended it)."""
    marks = [(run["submitted"], "submitted"), *sorted((e[0], e[1]) for e in run["events"])]
    return [(a, b, what) for (a, _), (b, what) in itertools.pairwise(marks) if b - a > stall]


def cause(a: float, b: float, faults: list[Fault]) -> str:
    """The fault kinds overlapping ``[a, b]`` (a fault's aftermath counted with it)."""
    kinds = sorted({k for began, ended, k, _ in faults
                    if began < b and ended + AFTERMATH_SECS > a})  # fmt: skip
    return "+".join(kinds) or "none"


def summarise(runs: list[dict[str, Any]], faults: list[Fault], slowest: float,
              stall: float) -> dict[str, Any]:  # fmt: skip
    ranked = sorted(runs, key=latency, reverse=True)
    tail = ranked[: max(1, int(len(ranked) * slowest))]
    seconds: dict[str, float] = defaultdict(float)
    runs_hit: dict[str, int] = defaultdict(int)
    for run in tail:
        seen = set()
        for a, b, _ in stalls(run, stall):
            label = cause(a, b, faults)
            seconds[label] += b - a
            seen.add(label)
        for label in seen:
            runs_hit[label] += 1
    return {"tail": tail, "seconds": dict(seconds), "runs_hit": dict(runs_hit)}


def outages(faults: list[Fault], workers: int) -> dict[str, list[tuple[float, float]]]:
    """The windows in which every worker was stopped, and those in which the engine was down
    (killed, until its restart answered ``/health``)."""
    edges = sorted(e for b, f, k, _ in faults if k == "worker_stop" for e in ((b, 1), (f, -1)))
    stopped, all_stopped, began = 0, [], 0.0
    for t, step in edges:
        stopped += step
        if step == 1 and stopped == workers:
            began = t
        elif step == -1 and stopped == workers - 1:
            all_stopped.append((began, t))
    engine = [(b, f) for b, f, k, _ in faults if k == "engine_kill"]
    return {"every worker stopped": all_stopped, "engine down": engine}


def p99_without(runs: list[dict[str, Any]], windows: list[tuple[float, float]]) -> float:
    """The runs' p99 latency with the time each spent inside ``windows`` taken out (windows
    that overlap counted once)."""
    merged: list[tuple[float, float]] = []
    for x, y in sorted(windows):
        if merged and x <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], y))
        else:
            merged.append((x, y))
    windows = merged
    left = []
    for run in runs:
        a, b = run["submitted"], run["submitted"] + latency(run)
        left.append(b - a - sum(max(0.0, min(b, y) - max(a, x)) for x, y in windows))
    return statistics.quantiles(left, n=100, method="inclusive")[98]


def show(run: dict[str, Any], faults: list[Fault]) -> None:
    t0 = run["submitted"]
    print(f"\n{run['run']}: {latency(run):.2f} s")
    end = t0 + latency(run)
    for began, ended, kind, target in faults:
        if began < end and ended + AFTERMATH_SECS > t0:
            print(f"   fault {began - t0:+7.2f} .. {ended - t0:+7.2f}  {kind} {target}")
    for t, kind, node, attempt, dispatch, worker in sorted(run["events"]):
        who = f" on {worker}" if worker else ""
        print(f"  {t - t0:+7.2f}  {kind} {node} a{attempt} d{dispatch}{who}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kept", type=Path, help="the directory `chaos --keep` wrote")
    parser.add_argument("--slowest", type=float, default=0.01, help="the share of runs to read")
    parser.add_argument("--stall", type=float, default=STALL_SECS)
    parser.add_argument("--show", type=int, default=5, help="timelines of the N slowest")
    parser.add_argument("--workers", type=int, default=3, help="the run's `--workers`")
    args = parser.parse_args(argv)
    runs, faults = load(args.kept)
    s = summarise(runs, faults, args.slowest, args.stall)
    tail = s["tail"]
    print(f"{len(tail)} slowest of {len(runs)} runs ({latency(tail[-1]):.2f} s to "
          f"{latency(tail[0]):.2f} s); stalls over {args.stall:g} s charged to the faults "
          f"overlapping them (or {AFTERMATH_SECS:g} s before):")  # fmt: skip
    for label, secs in sorted(s["seconds"].items(), key=lambda kv: -kv[1]):
        print(f"  {label:40s} {secs:8.1f} s in all, {secs / len(tail):5.2f} s per run, "
              f"in {s['runs_hit'][label]} runs")  # fmt: skip
    windows = outages(faults, args.workers)
    every, down = windows["every worker stopped"], windows["engine down"]
    hit = sum(1 for r in runs if any(a < r["submitted"] + latency(r) and b > r["submitted"]
                                     for a, b in every))  # fmt: skip
    print(f"p99 {p99_without(runs, []):.2f} s; without the time in windows with every worker "
          f"stopped ({len(every)}, {sum(b - a for a, b in every):.1f} s in all, {hit} runs in one) "
          f"{p99_without(runs, every):.2f} s; and without the engine's down time "
          f"{p99_without(runs, every + down):.2f} s")  # fmt: skip
    for run in tail[: args.show]:
        show(run, faults)


if __name__ == "__main__":
    main()
