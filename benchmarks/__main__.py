"""Run the benchmark suite, or one scenario, and optionally keep every figure as JSON.

    python -m benchmarks all --out results.json     # every scenario at its default size
    python -m benchmarks chain --in-flight 500      # one scenario; its own options follow
    python -m benchmarks all --quick                # every scenario at a small size

Scenarios: chain, peers, recovery, fleet, limits, idle, agents, testing, chaos, artifacts,
engine_start, scale, instructions (see benchmarks/README.md; scale needs a Postgres server,
instructions needs valgrind, and neither is part of ``all``).
Each prints its table and exits 0; a failed scenario makes ``all`` exit nonzero after running
the rest.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from benchmarks.machine import banner, describe

SCENARIOS = (
    "chain",
    "peers",
    "recovery",
    "fleet",
    "limits",
    "idle",
    "agents",
    "testing",
    "chaos",
    "artifacts",
    "engine_start",
    "scale",
    "instructions",
)

#: What ``all`` runs: (name in the report, scenario, its arguments). Recovery runs twice: as
#: the scenario says (a kill 2 s in, when Tether has already finished every run) and killed
#: halfway through (1,000 of 2,000 steps), when every system has work left to recover.
ALL: list[tuple[str, str, list[str]]] = [
    ("chain", "chain", ["--durability", "full,normal"]),
    ("peers", "peers", []),
    ("recovery", "recovery", []),
    ("recovery_halfway", "recovery", ["--kill-at-steps", "1000"]),
    ("fleet", "fleet", []),
    ("limits", "limits", []),
    ("idle", "idle", []),
    ("agents", "agents", []),
    ("testing", "testing", []),
    ("chaos", "chaos", []),
    ("artifacts", "artifacts", []),
    ("engine_start", "engine_start", []),
]

#: Small sizes for ``all --quick``: every scenario still measures what it says, on less work.
QUICK: list[tuple[str, str, list[str]]] = [
    ("chain", "chain", ["--runs", "200", "--rounds", "1"]),
    (
        "peers",
        "peers",
        ["--runs-seq", "20", "--runs-conc", "100", "--tether-500-runs", "500", "--rounds", "1"],
    ),
    ("recovery_halfway", "recovery", ["--runs", "50", "--rounds", "1", "--kill-at-steps", "250"]),
    ("fleet", "fleet", ["--runs", "100", "--rounds", "1"]),
    (
        "limits",
        "limits",
        ["--rounds", "1", "--steps", "5000", "--zmq-n", "5000", "--hops", "10000"],
    ),
    ("idle", "idle", ["--runs", "10000", "--sample", "100", "--timer-sample", "20"]),
    ("agents", "agents", ["--quick"]),
    ("testing", "testing", ["--quick"]),
    ("chaos", "chaos", ["--quick"]),
    ("artifacts", "artifacts", ["--runs", "20", "--rounds", "1"]),
    ("engine_start", "engine_start", ["--quick"]),
]


#: Scenarios with a ``--quick`` size of their own.
HAS_QUICK = ("agents", "testing", "chaos", "engine_start", "scale")

#: A scenario whose module is not named as it is.
MODULES = {"testing": "testing_speed"}


def run_scenario(name: str, argv: list[str]) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.{MODULES.get(name, name)}")
    result: dict[str, Any] = module.main(argv)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=("all", *SCENARIOS))
    parser.add_argument("--out", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true", help="small sizes (all, or one scenario)")
    args, rest = parser.parse_known_args(argv)
    machine = describe()
    report: dict[str, Any] = {"machine": machine, "scenarios": {}}
    if args.scenario == "all":
        if rest:
            parser.error("options after 'all' go to one scenario: run it alone")
        plan = QUICK if args.quick else ALL
    else:
        # This parser took `--quick`: it means the scenario's own small size, where it has one.
        quick = ["--quick"] if args.quick and args.scenario in HAS_QUICK else []
        plan = [(args.scenario, args.scenario, rest + quick)]
    print(f"benchmarks · {banner(machine)}")
    failed = []
    for name, scenario, scenario_args in plan:
        print(f"\n=== {name} ===", flush=True)
        try:
            report["scenarios"][name] = run_scenario(scenario, scenario_args)
        except SystemExit as exc:  # a scenario's own refusal (argparse, a failed check)
            if exc.code not in (0, None):
                failed.append(name)
                report["scenarios"][name] = {"error": f"exit {exc.code}"}
        except Exception as exc:  # report it and go on with the next scenario
            traceback.print_exc()
            failed.append(name)
            report["scenarios"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nfigures written to {args.out}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
