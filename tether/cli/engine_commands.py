"""CLI commands that talk to a running engine (``tether dev``) over its HTTP API, and
``validate``, which needs none.

Example::

    $ tether run examples/counter.yaml -i '{"n": 0}'
    ▸ exec_01J... started
    ▸ [first]   ✓ completed   2ms
    ...
    ▸ completed · 3 nodes

Exit status: 0 when the command did what it says (``run``: the run completed), 1 for an engine
answer or a run that did not complete, 2 for bad arguments or an invalid workflow file. Errors
are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Final

from tether.cli.api_client import ENGINE_HELP, CliError, EngineApi
from tether.cli.read_commands import (
    STATUSES,
    events_command,
    executions_command,
    inspect_command,
    schedules_command,
    workflows_command,
)
from tether.cli.run_follow import RunPrinter, follow_run

DEFAULT_ENGINE: Final = "http://127.0.0.1:7700"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def engine_parser(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
        p.add_argument("--engine", default=None, help=ENGINE_HELP)
        p.add_argument("--json", action="store_true", help="print JSON for machines")
        return p

    p = engine_parser("run", "register (if a file) and start a workflow, and follow it")
    p.add_argument("workflow", help="a workflow YAML file, or a registered workflow id")
    p.add_argument("-i", "--input", default="{}", help="the input as a JSON object")
    p.add_argument("--version", default=None, help="workflow version (default: the latest)")
    p.add_argument("--no-follow", action="store_true", help="print the execution id and exit")
    p.add_argument("--timeout", type=float, default=None, help="stop following after SECS")
    p.set_defaults(run=_guarded(run_command))
    p = engine_parser("inspect", "an execution's state and timeline")
    p.add_argument("execution_id")
    p.set_defaults(run=_guarded(inspect_command))
    p = engine_parser("watch", "follow a run as `tether run` does, from its start")
    p.add_argument("execution_id")
    p.add_argument("--timeout", type=float, default=None, help="stop following after SECS")
    p.set_defaults(run=_guarded(watch_command))
    p = engine_parser("events", "an execution's journal records")
    p.add_argument("execution_id")
    p.add_argument("--node", default=None, help="only this node's records")
    p.set_defaults(run=_guarded(events_command))
    p = engine_parser("executions", "list executions, newest first")
    p.add_argument("--status", default=None, choices=STATUSES)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(run=_guarded(executions_command))
    p = engine_parser("workflows", "list registered workflows")
    p.set_defaults(run=_guarded(workflows_command))
    p = engine_parser("schedules", "list cron schedules and their next fire")
    p.set_defaults(run=_guarded(schedules_command))
    p = engine_parser("cancel", "cancel a running execution")
    p.add_argument("execution_id")
    p.add_argument("--reason", default="cancelled from the CLI")
    p.set_defaults(run=_guarded(cancel_command))
    p = engine_parser("approve", "decide a pending human approval: approved or rejected")
    p.add_argument("execution_id")
    p.add_argument(
        "decision", nargs="?", default=None, help="approved or rejected (no default: say which)"
    )
    p.add_argument("--decision", dest="decision_flag", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--user",
        default=os.environ.get("TETHER_USER") or None,
        help="who decides, recorded in the journal (default: $TETHER_USER, else the user your "
        "token names)",
    )
    p.add_argument("--comment", default="")
    p.add_argument("--node", default=None, help="the approval node, when several are pending")
    p.set_defaults(run=_guarded(approve_command))
    p = engine_parser(
        "send-event", "send an event to a run waiting for it (or keep it until it does)"
    )
    p.add_argument("execution_id")
    p.add_argument("correlation_key", help="the key the wait names (its `event:`)")
    p.add_argument("--payload", default="null", help="JSON merged into the run's state")
    p.add_argument("--event-id", default=None, help="sent twice with one id, delivered once")
    p.set_defaults(run=_guarded(send_event_command))
    v = commands.add_parser("validate", help="check a workflow file (errors with file:line)")
    v.add_argument("file")
    v.set_defaults(run=validate_command)


def _guarded(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        api = EngineApi(args.engine, os.environ.get("TETHER_TOKEN"))
        try:
            status: int = command(api, args)
            return status
        except CliError as exc:
            print(f"tether {args.command}: {exc}", file=sys.stderr)
            return exc.status
        finally:
            api.close()

    return run


def watch_command(api: EngineApi, args: argparse.Namespace) -> int:
    out = RunPrinter(args.json, args.execution_id)
    view = follow_run(api, args.execution_id, out, args.timeout)
    if args.json:
        print(json.dumps({k: view.get(k) for k in ("execution_id", "status", "output", "error")}))
    return 0 if view["status"] == "completed" else 1


def validate_command(args: argparse.Namespace) -> int:
    # Here, not at import: the agent kinds, the runtime and the YAML compiler cost every
    # `tether` command (and each engine start) a few hundred ms, and only this one needs them.
    from tether.agents.kinds import AgentKinds
    from tether.ir import WorkflowError, compile_yaml_file
    from tether.runtime.runnable import unsupported_nodes

    try:
        wf = compile_yaml_file(Path(args.file))
    except FileNotFoundError:
        print(f"tether validate: no such file: {args.file}", file=sys.stderr)
        return 2
    except WorkflowError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    unsupported = unsupported_nodes(wf, AgentKinds())
    if unsupported:  # tether dev would refuse it: say so now, not at run time
        print(f"{args.file}: cannot run on this engine: {'; '.join(unsupported)}",
              file=sys.stderr)  # fmt: skip
        return 2
    count = f"{len(wf.nodes)} node{'' if len(wf.nodes) == 1 else 's'}"
    print(f"{args.file}: valid: workflow {wf.ref}, {count}")
    return 0


def run_command(api: EngineApi, args: argparse.Namespace) -> int:
    import msgspec

    from tether.ir import WorkflowError, compile_yaml_file

    try:
        given = json.loads(args.input)
    except json.JSONDecodeError as exc:
        raise CliError(f"--input is not JSON: {exc}", status=2) from None
    if not isinstance(given, dict):
        raise CliError("--input must be a JSON object", status=2)
    workflow_id, version = args.workflow, args.version
    path = Path(args.workflow)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            wf = compile_yaml_file(path)
        except FileNotFoundError:
            raise CliError(f"no such file: {args.workflow}", status=2) from None
        except WorkflowError as exc:
            raise CliError(str(exc), status=2) from None
        if version is not None and version != wf.version:
            raise CliError(
                f"{args.workflow} is version {wf.version}, not --version {version}: set "
                f'`version: "{version}"` in the file to register it as {version}',
                status=2,
            )
        registered = api.post("/workflows", {"ir": msgspec.to_builtins(wf)})
        for warning in registered.get("warnings", []):
            print(f"tether run: warning: {warning}", file=sys.stderr)
        workflow_id, version = wf.workflow_id, wf.version
    body = {"workflow_id": workflow_id, "input": given, "workflow_version": version}
    eid = api.post("/executions", body)["execution_id"]
    out = RunPrinter(args.json, eid)
    out.line(f"{eid} started")
    if args.no_follow:
        if args.json:
            print(json.dumps({"execution_id": eid}))
        return 0
    view = follow_run(api, eid, out, args.timeout)
    if args.json:
        print(json.dumps({k: view.get(k) for k in ("execution_id", "status", "output", "error")}))
    return 0 if view["status"] == "completed" else 1


def cancel_command(api: EngineApi, args: argparse.Namespace) -> int:
    out = api.post(f"/executions/{args.execution_id}/cancel", {"reason": args.reason})
    if args.json:
        print(json.dumps(out))
    elif out["cancelled"]:
        print(f"{args.execution_id}: cancelled")
    else:
        print(f"{args.execution_id}: already {out['status']}; nothing was done", file=sys.stderr)
    return 0 if out["cancelled"] else 1


def send_event_command(api: EngineApi, args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise CliError(f"--payload is not JSON: {exc}", status=2) from None
    body = {"correlation_key": args.correlation_key, "payload": payload,
            "event_id": args.event_id}  # fmt: skip
    out = api.post(f"/executions/{args.execution_id}/external-event", body)
    if args.json:
        print(json.dumps(out))
    elif out.get("accepted"):
        print(f"{args.execution_id}: event {args.correlation_key!r} sent")
    else:
        print(f"{args.execution_id}: event {args.correlation_key!r} already delivered (same id)")
    return 0


#: What ``tether approve`` accepts for a decision, and the decision it records.
DECISIONS = {"approved": "approved", "approve": "approved", "rejected": "rejected",
             "reject": "rejected"}  # fmt: skip


def approve_command(api: EngineApi, args: argparse.Namespace) -> int:
    given = args.decision or args.decision_flag
    if given is None:
        raise CliError(
            f"say the decision: tether approve {args.execution_id} approved|rejected", status=2
        )
    decision = DECISIONS.get(given.lower())
    if decision is None:
        raise CliError(f"the decision is approved or rejected, not {given!r}", status=2)
    body = {"decision": decision, "user_id": args.user, "comment": args.comment,
            "node_id": args.node}  # fmt: skip
    out = api.post(f"/executions/{args.execution_id}/approve", body)
    who = f" by {args.user}" if args.user else ""
    print(
        json.dumps(out)
        if args.json
        else f"{args.execution_id}: {decision} at {out['node_id']}{who}"
    )
    return 0
