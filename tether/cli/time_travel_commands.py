"""``tether replay`` and ``tether fork``: an execution's state at each record, and a new run
from the state at one of them (through the engine's API, as the other commands).

Example::

    $ tether replay exec_01...
        1  execution_started  status: new → running, data.n: 0
        2  node_scheduled     a   nodes.a: + {"attempt": 1, ...}
    $ tether fork exec_01... --at 2
    exec_02... forked from exec_01... at record 2: running; runs again: a
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, Final

from tether.cli.api_client import ENGINE_HELP, CliError, EngineApi

#: A value in a change line is cut to this many characters (``--full`` shows everything).
SHOWN_CHARS: Final = 60

Command = Callable[[EngineApi, argparse.Namespace], int]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def parser(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
        p.add_argument("--engine", default=None, help=ENGINE_HELP)
        p.add_argument("--json", action="store_true", help="print JSON for machines")
        p.add_argument("execution_id")
        return p

    p = parser("replay", "re-fold an execution's journal: the state at each record")
    p.add_argument("--at", type=int, default=None, help="only the state at record SEQ")
    p.add_argument("--full", action="store_true", help="the whole state after each record")
    p.set_defaults(run=_guarded(replay_command))
    p = parser("fork", "start a new execution from the state at one record of another")
    p.add_argument("--at", type=int, required=True, help="the record (its sequence number)")
    p.add_argument("--id", default=None, help="the new execution's id (default: a new one)")
    p.set_defaults(run=_guarded(fork_command))


def _guarded(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        api = EngineApi(args.engine, os.environ.get("TETHER_TOKEN"))
        try:
            return command(api, args)
        except CliError as exc:
            print(f"tether {args.command}: {exc}", file=sys.stderr)
            return exc.status
        finally:
            api.close()

    return run


def replay_command(api: EngineApi, args: argparse.Namespace) -> int:
    path = f"/executions/{args.execution_id}/states"
    if args.at is not None:
        one = api.get(path, at=args.at)
        if args.json:
            print(json.dumps(one))
            return 0
        print(_line(one))
        print(json.dumps(one["state"], indent=2, sort_keys=True))
        return 0
    doc = api.get(path, full="true" if args.json or args.full else None)
    if args.json:
        print(json.dumps(doc))
        return 0
    for step in doc["states"]:
        print(_line(step))
        if args.full:
            print(json.dumps(step["state"], sort_keys=True))
    return 0


def fork_command(api: EngineApi, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"at_seq": args.at}
    if args.id is not None:
        body["execution_id"] = args.id
    out = api.post(f"/executions/{args.execution_id}/fork", body)
    if args.json:
        print(json.dumps(out))
        return 0
    line = f"{out['execution_id']} forked from {out['forked_from']} at record {out['at_seq']}: "
    line += out["status"]
    if out["runs_again"]:
        line += f"; runs again: {', '.join(out['runs_again'])}"
    if out["finished_in_origin"]:
        line += f" (the origin finished {', '.join(out['finished_in_origin'])} later)"
    print(line)
    return 0


def _line(step: dict[str, Any]) -> str:
    """``SEQ  TYPE  NODE  changes`` for one record."""
    kind = step["record"]["kind"]
    node = kind.get("node_id") or ""
    changes = ", ".join(_change(op) for op in step["diff"]) or "(no change)"
    return f"{step['seq']:>5}  {step['type']:<22} {node:<12} {changes}"


def _change(op: dict[str, Any]) -> str:
    where = op["path"].lstrip("/").replace("/", ".").replace("~1", "/").replace("~0", "~")
    if op["op"] == "add":
        return f"{where}: + {_shown(op['value'])}"
    if op["op"] == "remove":
        return f"{where}: removed"
    return f"{where}: {_shown(op['old'])} → {_shown(op['value'])}"


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
