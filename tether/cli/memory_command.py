"""``tether memory``: a user's durable memory on a running engine (``/memory/{user}``).

- ``tether memory list USER [--current]``: every fact, oldest first, with what replaced what;
- ``tether memory write USER SUBJECT CONTENT [--supersedes ID] [--fact-id ID]``: remember one;
- ``tether memory context USER [--topic T] [--budget-tokens N]``: what a run would be given.

Example::

    $ tether memory write u1 location Pune
    $ tether memory write u1 location Amsterdam
    $ tether memory list u1
    FACT        SUBJECT   CONTENT    STATUS
    3f0c...     location  Pune       superseded by 9a1e...
    9a1e...     location  Amsterdam  current (superseded Pune)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import quote

from tether.cli.api_client import ENGINE_HELP, CliError, EngineApi

PROG = "tether memory"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("memory", help="a user's durable memory (facts)")
    p.add_argument("--engine", default=None, help=ENGINE_HELP)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    sub = p.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    listed = sub.add_parser("list", help="a user's facts, with what supersedes what")
    listed.add_argument("user")
    listed.add_argument("--current", action="store_true", help="only the current facts")
    write = sub.add_parser("write", help="remember a fact for a user")
    write.add_argument("user")
    write.add_argument("subject")
    write.add_argument("content")
    write.add_argument("--supersedes", default=None, help="the id of a fact this replaces")
    write.add_argument("--fact-id", default=None, help="an id that makes the write idempotent")
    context = sub.add_parser("context", help="the facts most relevant to a topic, in budget")
    context.add_argument("user")
    context.add_argument("--topic", default="")
    context.add_argument("--budget-tokens", type=int, default=400)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    api = EngineApi(args.engine, os.environ.get("TETHER_TOKEN"))
    path = f"/memory/{quote(args.user, safe='')}"
    try:
        if args.memory_command == "write":
            body = {"subject": args.subject, "content": args.content,
                    "supersedes": args.supersedes, "fact_id": args.fact_id}  # fmt: skip
            fact = api.post(f"{path}/facts", body)
            said = "written" if fact["written"] else "already written (nothing changed)"
            print(json.dumps(fact) if args.json else f"{fact['fact_id']}  {said}")
            return 0
        if args.memory_command == "context":
            ctx = api.get(f"{path}/context", topic=args.topic, budget_tokens=args.budget_tokens)
            if args.json:
                print(json.dumps(ctx))
            else:
                print(ctx["text"])
                count = len(ctx["facts"])
                print(f"({ctx['tokens']} of {ctx['budget_tokens']} tokens, {count} facts)")
            return 0
        facts = api.get(f"{path}/facts", current="true" if args.current else None)["facts"]
        print(json.dumps(facts) if args.json else _table(facts))
        return 0
    except CliError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.status
    finally:
        api.close()


def _table(facts: list[dict[str, Any]]) -> str:
    by_id = {f["fact_id"]: f for f in facts}
    rows = [("FACT", "SUBJECT", "CONTENT", "STATUS")]
    for f in facts:
        if f["current"]:
            replaced = [o["content"] for o in facts if o["superseded_by"] == f["fact_id"]]
            status = "current" + (f" (superseded {', '.join(replaced)})" if replaced else "")
        else:
            newer = by_id.get(f["superseded_by"] or "")
            status = f"superseded by {f['superseded_by']}" + (
                f" ({newer['content']})" if newer else ""
            )
        rows.append((f["fact_id"], f["subject"], f["content"], status))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)), r[3]])
             for r in rows]  # fmt: skip
    return "\n".join(line.rstrip() for line in lines)
