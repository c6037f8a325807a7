"""``tether worker``: run the ``@tool`` functions of some modules for a remote engine.

Example::

    $ tether worker --engine tcp://10.0.0.5:7701 --queue python_tool \\
          --modules my_tools,more_tools --concurrency 8

Against an engine whose worker port uses keys (any engine reachable from another machine), give
the worker its key pair and the engine's public key (files from ``zmq.auth.create_certificates``
or ``python -m tether.fleet.keys``)::

    $ tether worker --engine tcp://10.0.0.5:7701 --modules my_tools \\
          --key keys/worker-1.key_secret --engine-key keys/engine.key

(or ``TETHER_WORKER_KEY`` and ``TETHER_ENGINE_KEY``).

Engines sharing one Postgres database (``tether dev --shared``) are served by one worker with
``--engine`` once per engine; its ``--concurrency`` slots are split between them, and an engine
that dies leaves the others served (:mod:`tether.fleet.worker_set`)::

    $ tether worker --engine tcp://host1:7701 --engine tcp://host2:7701 --modules my_tools

The first SIGTERM or SIGINT drains (in-flight tools finish and are reported, then exit 0); a
second one exits at once. Exit 1: the engine cannot be reached or refused the worker. Exit 2:
bad arguments or modules. User errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from tether.runtime.tools import Tool

PROG: Final = "tether worker"
EXIT_USAGE: Final = 2


class UsageError(Exception):
    """Something the user can fix in the command line or the modules; one line, exit 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def add_parser(commands: Any) -> None:
    """Register ``worker`` on the ``tether`` parser's subcommands."""
    p: argparse.ArgumentParser = commands.add_parser(
        "worker",
        help="run tools for a remote engine",
        description="Connect to an engine and run the @tool functions of the given modules.",
    )
    p.add_argument("--engine", required=True, action="append", dest="engines",
                   metavar="tcp://HOST:PORT",
                   help="engine address (repeatable: engines sharing one Postgres database; "
                   "the --concurrency slots are split between them)")  # fmt: skip
    p.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="queue to take work from (repeatable; default python_tool)",
    )
    p.add_argument(
        "--modules",
        action="append",
        default=[],
        metavar="MOD[,MOD...]",
        help="modules whose top-level @tool functions to serve (comma-separated, repeatable; "
        "none: only the built-in model, http, MCP and eval calls)",
    )
    p.add_argument("--concurrency", type=_positive_int, default=8, help="tools run at once")
    p.add_argument("--worker-id", default=None, help="default HOSTNAME:PID")
    p.add_argument(
        "--connect-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECS",
        help="give up when no engine answers within this (default 10)",
    )
    p.add_argument(
        "--key",
        default=None,
        metavar="FILE",
        help="this worker's CURVE key pair, NAME.key_secret (TETHER_WORKER_KEY)",
    )
    p.add_argument(
        "--engine-key",
        default=None,
        metavar="FILE",
        help="the engine's CURVE public key, NAME.key (TETHER_ENGINE_KEY)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(run=run)


def load_tools(module_args: list[str]) -> list[Tool]:
    """The Tool objects defined at the top level of the named modules; UsageError if none."""
    from tether.runtime.tools import Tool

    return [v for m in load_modules(module_args) for v in vars(m).values() if isinstance(v, Tool)]


def import_user_module(name: str) -> ModuleType:
    """Import a user's module, found beside where the command runs too; UsageError saying
    what went wrong (one line, no traceback)."""
    # `python -m` puts the working directory on sys.path, the `tether` script does not: make
    # both find `--modules my_tools` next to where they are started.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (exc.name == name or name.startswith(exc.name + ".")):
            raise UsageError(f"cannot import module {name!r}: no such module") from None
        raise UsageError(f"importing module {name!r} failed: {exc}") from None
    except Exception as exc:
        raise UsageError(f"importing module {name!r} failed: {type(exc).__name__}: {exc}") from None


def load_modules(module_args: list[str]) -> list[ModuleType]:
    """Import the modules ``--modules`` names; UsageError saying what went wrong, or when one
    defines no tool (steps are tools) at its top level."""
    from tether.runtime.tools import Tool  # the runtime: when a command loads modules

    names = [n.strip() for arg in module_args for n in arg.split(",") if n.strip()]
    if not names:
        raise UsageError("--modules names no module")
    found: list[ModuleType] = []
    for name in names:
        module = import_user_module(name)
        if not any(isinstance(v, Tool) for v in vars(module).values()):
            raise UsageError(f"module {name!r} defines no @tool functions at its top level")
        found.append(module)
    return found


def run(args: argparse.Namespace) -> int:
    """Run ``tether worker`` with parsed ``args``; the exit status."""
    # The fleet, the agent kinds and the runtime's tools load here, not when the `tether`
    # parser is built for any command.
    from tether.cli.worker_process import run_worker

    return run_worker(args)
