"""``tether deploy``: register a workflow on an engine (and put it on a schedule there), the
CLI face of :func:`tether.deploy`. It never starts a run.

Example::

    $ tether deploy flows/report.yaml --runtime self-host --schedule "0 9 * * *"
    deployed report@1 (sha256:3f1c...) to self-host https://tether.example.com
    scheduled as report: 0 9 * * * (UTC)
    $ tether deploy my_flows:pipeline            # a @workflow: module:attribute

Exit status: 0 when deployed, 1 when the engine is not configured, not reachable or refused
it (its message on stderr), 2 for bad arguments or a workflow that does not load.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.cli.worker_command import UsageError, import_user_module

if TYPE_CHECKING:
    from tether.deployment import DeployableWorkflow

USAGE = 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "deploy", help="register a workflow on an engine, optionally on a schedule",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )  # fmt: skip
    p.add_argument("workflow", help="a YAML file, or module:attribute naming a @workflow")
    p.add_argument("--runtime", default=None,
                   help="local (default), self-host, cloud, or an http(s):// URL")  # fmt: skip
    p.add_argument("--schedule", default=None, help="a cron expression: start it at every fire")
    p.add_argument("--timezone", default="UTC", help="the schedule's time zone")
    p.add_argument("--schedule-id", default=None, help="default: the workflow id")
    p.add_argument("--input", "-i", default=None, help="JSON input of each scheduled run")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Here, not at import: httpx, the YAML compiler and the runtime's decorators cost every
    # `tether` command's parser (and each engine start) their imports.
    from tether.deployment import DeployError, deploy
    from tether.ir import WorkflowError

    try:
        workflow = load_workflow(args.workflow)
        given = json.loads(args.input) if args.input is not None else None
    except (UsageError, WorkflowError) as exc:
        print(f"tether deploy: {exc}", file=sys.stderr)
        return USAGE
    except json.JSONDecodeError as exc:
        print(f"tether deploy: --input is not JSON: {exc}", file=sys.stderr)
        return USAGE
    try:
        done = deploy(
            workflow, args.runtime, schedule=args.schedule, input=given,
            schedule_id=args.schedule_id, timezone=args.timezone,
        )  # fmt: skip
    except DeployError as exc:
        print(f"tether deploy: {exc}", file=sys.stderr)
        return 1
    print(
        f"deployed {done.workflow_id}@{done.version} ({done.digest}) to {done.runtime} {done.url}"
    )
    if done.scheduled:
        print(f"scheduled as {done.schedule_id}: {args.schedule} ({args.timezone})")
    return 0


def load_workflow(where: str) -> DeployableWorkflow:
    """A YAML path, or ``module:attribute`` naming a ``@workflow`` (imported from the current
    directory too, as ``tether dev --modules`` does)."""
    if where.endswith((".yaml", ".yml")) or Path(where).is_file():
        if not Path(where).is_file():
            raise UsageError(f"no such file: {where}")
        return Path(where)
    module_name, sep, attribute = where.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"{where!r}: give a YAML file or module:attribute (a @workflow)")
    from tether.runtime.code_first.decorators import CodeWorkflow

    module = import_user_module(module_name)
    found: Any = getattr(module, attribute, None)
    if not isinstance(found, CodeWorkflow):
        raise UsageError(f"{where!r} is not a @workflow (found {type(found).__name__})")
    return found
