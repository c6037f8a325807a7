"""Run the benchmark suite, or one scenario, and optionally keep every figure as JSON.

    python -m benchmarks all --out results.json     # every scenario at its default size
    python -m benchmarks chain --in-flight 500      # one scenario; its own options follow
    python -m benchmarks all --quick                # every scenario at a small size

Scenarios: chain, peers, recovery, fleet, limits (see benchmarks/README.md). Each prints its
table and exits 0; a failed scenario makes ``all`` exit nonzero after running the rest.
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

SCENARIOS = ("chain", "peers", "recovery", "fleet", "limits")

#: Small sizes for ``--quick``: every scenario still measures what it says, on less work.
QUICK: dict[str, list[str]] = {
    "chain": ["--runs", "200", "--rounds", "1"],
    "peers": [
        "--runs-seq",
        "20",
        "--runs-conc",
        "100",
        "--tether-500-runs",
        "500",
        "--rounds",
        "1",
    ],
    "recovery": ["--runs", "50", "--rounds", "1"],
    "fleet": ["--runs", "100", "--rounds", "1"],
    "limits": ["--rounds", "1", "--steps", "5000", "--zmq-n", "5000", "--hops", "10000"],
}


def run_scenario(name: str, argv: list[str]) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.{name}")
    result: dict[str, Any] = module.main(argv)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=("all", *SCENARIOS))
    parser.add_argument("--out", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true", help="all: small sizes")
    args, rest = parser.parse_known_args(argv)
    machine = describe()
    report: dict[str, Any] = {"machine": machine, "scenarios": {}}
    names = SCENARIOS if args.scenario == "all" else (args.scenario,)
    if args.scenario == "all" and rest:
        parser.error("options after 'all' go to one scenario: run it alone")
    print(f"benchmarks · {banner(machine)}")
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        scenario_args = QUICK[name] if args.quick else rest
        try:
            report["scenarios"][name] = run_scenario(name, scenario_args)
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
