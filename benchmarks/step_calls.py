"""Python calls per durable step, counted: which functions one more step runs, and how often.

    python -m benchmarks.step_calls [--fleet | --lean] [--runs 300,900] [--top 40]

The chain (``--fleet``: the fleet's engine, two ``tether worker`` processes, which are not
counted; ``--lean``: the lean reference, ../shared/bench/lean_reference) runs twice in this
process under cProfile, with each ``--runs``; the difference of each function's calls over
the difference of the steps is what one more step calls, start-up and imports cancelled out,
as ``python -m benchmarks instructions`` does with instructions.
It names what a lean step must not run: the interpreter's cost of a step follows the Python
code it runs (each call ~800 instructions before its body; in CPython 3.11 bytecode and its
inline caches are read as data, so more code on the path is more cache misses too).

A coroutine counts once per resumption (one that suspends at an await is two calls a step).
The profiler's own cost per call inflates times, so none are printed: count, then measure
with ``benchmarks instructions`` or ``benchmarks chain``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from typing import Any

from benchmarks.instructions import STEPS_PER_RUN, parse_sizes, run_chains
from benchmarks.machine import banner, describe

#: A function as cProfile keys it: (file, line, name); built-ins have file "~".
Function = tuple[str, int, str]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", action="store_true", help="count the fleet's engine")
    parser.add_argument("--lean", action="store_true", help="count the lean reference")
    parser.add_argument("--in-flight", type=int, help="500, or 50 with --fleet")
    parser.add_argument("--runs", help="the two sizes: small,large (300,900; 100,300 --fleet)")
    parser.add_argument("--top", type=int, default=40, help="print the N most called")
    args = parser.parse_args(argv)
    if args.fleet and args.lean:
        parser.error("--fleet or --lean: one at a time")
    kind = "fleet" if args.fleet else "lean" if args.lean else "tether"
    in_flight = args.in_flight or (50 if args.fleet else 500)
    small, large = parse_sizes(parser, args.runs or ("100,300" if args.fleet else "300,900"))
    machine = describe()
    where = {"fleet": "the fleet's engine, 2 workers", "lean": "the lean reference"}.get(
        kind, "embedded"
    )
    print(f"step calls: 10-node chains, {in_flight} in flight, {where} · {banner(machine)}")
    before = _profiled_calls(kind, small, in_flight)
    after = _profiled_calls(kind, large, in_flight)
    per_step = calls_per_step(before, after, (large - small) * STEPS_PER_RUN)
    python = sum(n for f, n in per_step.items() if f[0] != "~")
    builtin = sum(n for f, n in per_step.items() if f[0] == "~")
    print(f"  {python:6.1f} calls of Python functions and {builtin:6.1f} of built-ins per step")
    ranked = sorted(per_step.items(), key=lambda kv: -kv[1])
    top = [kv for kv in ranked if kv[0][0] != "~"][: args.top]
    top_builtin = [kv for kv in ranked if kv[0][0] == "~"][: max(1, args.top // 4)]
    for title, rows in (("Python functions", top), ("built-ins", top_builtin)):
        print(f"  {title}, calls per step:")
        for function, calls in rows:
            print(f"    {calls:6.2f}  {describe_function(function)}")
    return {
        "scenario": "step_calls",
        "machine": machine,
        "python_calls": python,
        "builtin_calls": builtin,
        "top": [(describe_function(f), n) for f, n in top + top_builtin],
    }


def calls_per_step(
    before: dict[Function, int], after: dict[Function, int], steps: int
) -> dict[Function, float]:
    """Each function's calls in one more step: those it grew by between the two runs (a
    function called a fixed number of times, as at start-up, cancels out)."""
    grown = {f: (n - before.get(f, 0)) / steps for f, n in after.items()}
    return {f: n for f, n in grown.items() if n >= 0.05}


def describe_function(function: Function) -> str:
    """``path:line:name``, the path from the package (or the standard library) on."""
    file, line, name = function
    if file == "~":
        return name
    roots = (("/site-packages/", False), ("/tether/", True), ("/benchmarks/", True),
             ("/lean_reference/", True), ("/lib/", False))  # fmt: skip
    for root, keep in roots:
        if root in file:
            file = (root.lstrip("/") if keep else "") + file.split(root, 1)[1]
            break
    return f"{file}:{line}:{name}"


def _profiled_calls(kind: str, runs: int, in_flight: int) -> dict[Function, int]:
    profile = cProfile.Profile()
    profile.enable()
    try:
        run_chains(kind, runs, in_flight)
    finally:
        profile.disable()
    stats: dict[Function, tuple[int, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return {function: row[1] for function, row in stats.items()}  # row[1]: all calls


if __name__ == "__main__":
    main()
