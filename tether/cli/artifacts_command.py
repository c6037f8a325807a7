"""``tether artifacts gc``: remove the artifacts no journal row or snapshot references, put at
least ``--min-age`` seconds ago, through the engine's API (the engine spares what its turns
in flight are writing; see ``tether.persistence.artifacts.sweep``).

Example::

    $ tether artifacts gc --min-age 3600
    removed 3 artifacts; kept 41 referenced, 2 younger than 3600 s (46 in all)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tether.cli.api_client import ENGINE_HELP, CliError, EngineApi


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = commands.add_parser(
        "artifacts", help="the engine's content-addressed artifacts",
        description="the engine's content-addressed artifacts (large values of its journals)",
    )  # fmt: skip
    sub = top.add_subparsers(dest="artifacts_command", metavar="ACTION", required=True)
    gc = sub.add_parser(
        "gc", help="remove the artifacts nothing references",
        description="remove the artifacts no journal row or snapshot references",
    )  # fmt: skip
    gc.add_argument("--engine", default=None, help=ENGINE_HELP)
    gc.add_argument(
        "--min-age", type=float, default=3600.0,
        help="keep artifacts put less than this many seconds ago (default 3600)",
    )  # fmt: skip
    gc.add_argument("--json", action="store_true", help="print JSON for machines")
    gc.set_defaults(run=_gc)


def _gc(args: argparse.Namespace) -> int:
    api = EngineApi(args.engine, os.environ.get("TETHER_TOKEN"))
    try:
        report = api.post(f"/artifacts/sweep?min_age={args.min_age}")
    except CliError as exc:
        print(f"tether artifacts gc: {exc}", file=sys.stderr)
        return exc.status
    finally:
        api.close()
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"removed {len(report['removed'])} artifacts; kept {report['referenced']} referenced, "
        f"{report['young']} younger than {args.min_age:g} s ({report['total']} in all)"
    )
    return 0
