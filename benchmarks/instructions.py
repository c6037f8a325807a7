"""Instructions per durable step, counted by valgrind: a figure this noisy machine cannot move.

    python -m benchmarks instructions [--in-flight 500] [--runs 600,1800] [--lean] [--top 15]
    python -m benchmarks instructions --fleet        # the fleet's engine: 50 in flight, 2 workers
    python -m benchmarks instructions --lean --cache # L1 cache misses per step too (cachegrind)

Wall-clock and CPU figures of the chain (``python -m benchmarks chain``) move +-15-20% from one
round to the next on a shared 2-core VM, so a change worth 2-3% of a step cannot be told from
noise with them. Instructions can: the chain runs twice under ``valgrind --tool=callgrind``
(once with each ``--runs``), and the difference of the two totals over the difference of their
steps is what one more step costs, start-up and imports cancelled out; two invocations agree
to ~0.1%. It counts every thread of the process (the SQLite writer's too), not the event
loop's alone. ``--lean`` counts the lean reference (../shared/bench/lean_reference) the same
way, for the gap to the floor in instructions; ``--fleet`` counts the fleet's engine instead
(``benchmarks.fleet``'s measurement: every step run by one of two ``tether worker`` processes,
which valgrind does not count, at 50 in flight, runs 100 and 300 unless given); ``--top``
prints the C functions whose
instructions per step grew most (the interpreter's own loop first: Python code shows up as
``_PyEval_EvalFrameDefault``, and the C calls it makes under their own names).

``--cache`` runs ``valgrind --tool=cachegrind`` instead, which also simulates this machine's
level-1 caches (their sizes as the CPU reports them; no hardware prefetcher) and prints the
instruction- and data-cache misses of one more step beside its instructions: the runtime's
step takes ~7x the floor's time for ~3.7x its instructions, and the misses say how much of the
rest is the code and memory a step touches (in CPython 3.11 bytecode and its inline caches are
read as data: more functions on the path miss more), which a leaner shape must cut as well.

Caveats: valgrind runs the threads one at a time, so commit batches form differently than on
the machine (fewer, larger); and it hides some CPU features (SHA extensions), so hashing
counts more instructions than it costs. Compare counts with counts, taken with the same sizes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.machine import banner, describe

#: A chain is 10 steps (benchmarks.chain.chain_workflow's default length).
STEPS_PER_RUN = 10

#: What a counted run measures: the embedded chain, the lean reference, the fleet's engine.
KINDS = ("tether", "lean", "fleet")

#: The fleet's shape when counted: workers and each one's concurrency (benchmarks.fleet's).
FLEET_WORKERS = 2

_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")
#: What cachegrind's summary says of the whole run: instructions, then L1 misses.
_CACHE_LINES = {
    "instructions": re.compile(r"I\s+refs:\s*([\d,]+)"),
    "I1 misses": re.compile(r"I1\s+misses:\s*([\d,]+)"),
    "D1 misses": re.compile(r"D1\s+misses:\s*([\d,]+)"),
}
_FUNCTION_LINE = re.compile(r"\s*([\d,]+) \([^)]*\)\s+\*?\s*(\S.*)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, help="500, or 50 with --fleet")
    parser.add_argument("--runs", help="the two sizes: small,large (600,1800; 100,300 --fleet)")
    parser.add_argument("--lean", action="store_true", help="count the lean reference too")
    parser.add_argument("--fleet", action="store_true", help="count the fleet's engine instead")
    parser.add_argument("--top", type=int, default=0, help="print the N costliest C functions")
    parser.add_argument(
        "--cache", action="store_true", help="count L1 cache misses too (cachegrind; no --top)"
    )
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fleet and args.lean:
        parser.error("--lean compares the embedded chain; count the fleet on its own")
    if args.cache and args.top:
        parser.error("--top names callgrind's costliest functions; run it without --cache")
    fleet = args.fleet or args.child == "fleet"
    in_flight = args.in_flight or (50 if fleet else 500)
    small, large = parse_sizes(parser, args.runs or ("100,300" if fleet else "600,1800"))
    if args.child is not None:
        run_chains(args.child, large, in_flight)
        return {}
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    machine = describe()
    where = "the fleet's engine, 2 workers" if fleet else "embedded"
    print(f"instructions: 10-node chains, {in_flight} in flight, {where} · {banner(machine)}")
    out: dict[str, Any] = {"scenario": "instructions", "machine": machine, "results": {}}
    kinds = ["fleet"] if fleet else ["tether", "lean"] if args.lean else ["tether"]
    for kind in kinds:
        if args.cache:
            result = cache_per_step(kind, small, large, in_flight)
            misses = f"  {result['I1 misses']:8,.0f} I1 and {result['D1 misses']:8,.0f} D1 misses"
        else:
            result = count_per_step(kind, small, large, in_flight, args.top)
            misses = ""
        out["results"][kind] = result
        print(
            f"  {kind:6s} {result['per_step']:10,.0f} instructions{misses} per step"
            f"  (runs {small} and {large}: {result['small']:,} and {result['large']:,} in all)"
        )
        for name, per_step in result.get("top", []):
            print(f"      {per_step:9,.0f}  {name}")
    if args.lean:
        ours, floor = out["results"]["tether"], out["results"]["lean"]
        out["results"]["gap"] = gap = ours["per_step"] / floor["per_step"]
        print(f"  tether's step costs {gap:.1f}x the lean reference's instructions")
        if args.cache:
            print(
                f"  and {ours['I1 misses'] / floor['I1 misses']:.1f}x its I1 misses,"
                f" {ours['D1 misses'] / floor['D1 misses']:.1f}x its D1 misses"
            )
    return out


def parse_sizes(parser: argparse.ArgumentParser, runs: str) -> tuple[int, int]:
    """``--runs``' two sizes, small then large (a usage error otherwise)."""
    try:
        small, large = (int(x) for x in runs.split(","))
    except ValueError:
        parser.error(f"--runs takes two sizes, small,large; got {runs!r}")
    if not 0 < small < large:
        parser.error(f"--runs: the first size must be positive and below the second: {runs!r}")
    return small, large


def count_per_step(kind: str, small: int, large: int, in_flight: int, top: int) -> dict[str, Any]:
    """Instructions of one more step of ``kind`` (one of KINDS), from two counted runs."""
    with tempfile.TemporaryDirectory() as tmp:
        totals = []
        for runs in (small, large):
            out_file = Path(tmp) / f"callgrind.{runs}"
            totals.append(_counted_run(kind, runs, in_flight, out_file))
        steps = (large - small) * STEPS_PER_RUN
        per_step = (totals[1] - totals[0]) / steps
        costliest = _costliest(Path(tmp), small, large, steps, top) if top else []
    return {"small": totals[0], "large": totals[1], "per_step": per_step, "top": costliest}


def cache_per_step(kind: str, small: int, large: int, in_flight: int) -> dict[str, Any]:
    """Instructions and L1 misses of one more step of ``kind``, from two cachegrind runs."""
    with tempfile.TemporaryDirectory() as tmp:
        totals = [
            cache_totals(_valgrind(kind, runs, in_flight, "cachegrind", Path(tmp) / str(runs)))
            for runs in (small, large)
        ]
    steps = (large - small) * STEPS_PER_RUN
    out: dict[str, Any] = {
        what: (totals[1][what] - totals[0][what]) / steps for what in _CACHE_LINES
    }
    out["per_step"] = out.pop("instructions")
    out["small"], out["large"] = totals[0]["instructions"], totals[1]["instructions"]
    return out


def cache_totals(summary: str) -> dict[str, int]:
    """The whole run's instructions and L1 misses, from cachegrind's summary on stderr."""
    totals = {}
    for what, pattern in _CACHE_LINES.items():
        found = pattern.search(summary)
        if found is None:
            raise RuntimeError(f"cachegrind's summary has no {what} line:\n{summary[-2000:]}")
        totals[what] = int(found.group(1).replace(",", ""))
    return totals


def _counted_run(kind: str, runs: int, in_flight: int, out_file: Path) -> int:
    found = _COLLECTED.search(_valgrind(kind, runs, in_flight, "callgrind", out_file))
    if found is None:
        raise RuntimeError(f"callgrind said nothing of what the {kind} run collected")
    return int(found.group(1).replace(",", ""))


def _valgrind(kind: str, runs: int, in_flight: int, tool: str, out_file: Path) -> str:
    """Run ``runs`` chains of ``kind`` under valgrind's ``tool``; what it said on stderr."""
    cmd = [
        "valgrind", f"--tool={tool}", f"--{tool}-out-file={out_file}",
        *(["--cache-sim=yes"] if tool == "cachegrind" else []),
        sys.executable, "-m", "benchmarks.instructions", "--child", kind,
        "--runs", f"1,{runs}", "--in-flight", str(in_flight),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(f"the counted {kind} run of {runs} chains failed:\n{tail}")
    return done.stderr


def run_chains(kind: str, runs: int, in_flight: int) -> None:
    """``runs`` chains of ``kind`` (one of KINDS), in this process: what is counted (here, under
    valgrind) or profiled (``benchmarks.step_calls``)."""
    import anyio

    from benchmarks.chain import load_lean, measure_chain, measure_lean
    from benchmarks.fleet import measure_fleet

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "chain.db"
        if kind == "fleet":  # the workers are other processes: valgrind counts the engine
            share = max(1, in_flight // FLEET_WORKERS)
            anyio.run(measure_fleet, db, runs, in_flight, FLEET_WORKERS, share, "full")
        elif kind == "lean":
            lean = load_lean()
            if lean is None:
                raise SystemExit("--lean: no lean reference beside the project")
            measure_lean(lean, db, runs, in_flight)
        else:
            anyio.run(measure_chain, db, runs, in_flight, "full")


def _costliest(
    where: Path, small: int, large: int, steps: int, top: int
) -> list[tuple[str, float]]:
    """The C functions whose own instructions grew most per step between the two runs."""
    before = _self_costs(where / f"callgrind.{small}")
    after = _self_costs(where / f"callgrind.{large}")
    grown = {name: (after[name] - before.get(name, 0)) / steps for name in after}
    return sorted(grown.items(), key=lambda kv: -kv[1])[:top]


def _self_costs(out_file: Path) -> dict[str, int]:
    shown = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(out_file)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    costs: dict[str, int] = {}
    for line in shown.splitlines():
        found = _FUNCTION_LINE.match(line)
        if found is None or ":" not in found.group(2):
            continue
        name = found.group(2).split(" [")[0]
        name = name.rsplit("/", 1)[-1]  # file:function, without the build's directories
        costs[name] = costs.get(name, 0) + int(found.group(1).replace(",", ""))
    return costs


if __name__ == "__main__":
    main()
