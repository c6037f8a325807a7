"""``tether agents``: the agents an engine publishes over A2A.

- ``tether agents list``: each registered workflow as an agent (id, version, card URL);
- ``tether agents card ID``: that agent's A2A Agent Card, as JSON.

Example::

    $ tether agents list
    AGENT     VERSION  CARD
    research  1        http://127.0.0.1:7700/agents/research/card
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tether.cli.api_client import ENGINE_HELP, CliError, EngineApi

PROG = "tether agents"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("agents", help="agents the engine publishes (A2A)")
    p.add_argument("--engine", default=None, help=ENGINE_HELP)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    sub = p.add_subparsers(dest="agents_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="list the agents and their card URLs")
    card = sub.add_parser("card", help="print one agent's A2A Agent Card")
    card.add_argument("agent_id")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    api = EngineApi(args.engine, os.environ.get("TETHER_TOKEN"))
    try:
        if args.agents_command == "card":
            print(json.dumps(api.get(f"/agents/{args.agent_id}/card"), indent=2))
            return 0
        agents = api.get("/agents")["agents"]
        if args.json:
            print(json.dumps(agents))
            return 0
        rows = [("AGENT", "VERSION", "CARD")]
        rows += [(a["id"], str(a["version"]), a["card_url"]) for a in agents]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return 0
    except CliError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.status
    finally:
        api.close()
