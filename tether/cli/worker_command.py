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
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final

import anyio
import zmq

from tether.agents.kinds import AgentKinds
from tether.fleet.connection import EngineUnreachable, HandshakeRefused
from tether.fleet.keys import KeyFileError, WorkerKeys
from tether.fleet.worker_set import WorkerSet
from tether.logs import configure_logging
from tether.runtime.tools import Tool, ToolRegistry

PROG: Final = "tether worker"
EXIT_UNREACHABLE: Final = 1
EXIT_USAGE: Final = 2

log = logging.getLogger("tether.worker")


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
    configure_logging(args.log_level)
    try:
        keys = worker_keys(args.key, args.engine_key, os.environ)
        registry = ToolRegistry(load_tools(args.modules) if args.modules else [])
        # Model, http and MCP calls of the engine's workflows run wherever tools run: with the
        # keys of this worker's environment.
        kinds = AgentKinds()
        for builtin in kinds.tools():
            registry.add(builtin)
    except (UsageError, ValueError) as exc:  # ValueError: two different tools, one name
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        worker = WorkerSet(
            args.engines,
            tools=registry,
            queues=args.queues or ["python_tool"],
            concurrency=args.concurrency,
            worker_id=args.worker_id,
            connect_timeout_secs=args.connect_timeout,
            keys=keys,
        )
    except ValueError as exc:  # an engine named twice
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    status = anyio.run(_serve, worker, kinds, args)
    if status > 128 or threading.active_count() > 1:
        # A tool thread still running (abandoned after a timeout, or a second signal) would
        # keep the interpreter alive at exit: leave now, it has been reported or will expire.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def worker_keys(
    key: str | None, engine_key: str | None, env: Mapping[str, str]
) -> WorkerKeys | None:
    """The worker's CURVE keys from the flags or the environment; None when neither names any.

    Example::

        worker_keys("w1.key_secret", "engine.key", os.environ)   # WorkerKeys(...)
    """
    key = key or env.get("TETHER_WORKER_KEY") or None
    engine_key = engine_key or env.get("TETHER_ENGINE_KEY") or None
    if key is None and engine_key is None:
        return None
    if key is None or engine_key is None:
        raise UsageError(
            "give both --key (this worker's NAME.key_secret) and --engine-key (the engine's "
            "NAME.key), or neither"
        )
    try:
        return WorkerKeys.from_files(key, engine_key)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None


async def _serve(worker: WorkerSet, kinds: AgentKinds, args: argparse.Namespace) -> int:
    await kinds.start()  # MCP servers the calls start are stopped as the worker ends
    try:
        return await _serve_started(worker, args)
    finally:
        await kinds.aclose()  # in the task that started it: its task group is the current scope


async def _serve_started(worker: WorkerSet, args: argparse.Namespace) -> int:
    status = 0
    async with anyio.create_task_group() as tg:

        async def on_signals() -> None:
            nonlocal status
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    if not worker.stopping:
                        log.info(
                            "%s: %s received; draining %d in-flight tool(s) "
                            "(send it again to exit at once)",
                            PROG,
                            signal.Signals(signum).name,
                            worker.in_flight,
                        )
                        worker.request_stop()
                    else:
                        print(f"{PROG}: exiting without draining", file=sys.stderr)
                        status = 128 + signum
                        tg.cancel_scope.cancel()
                        return

        tg.start_soon(on_signals)
        try:
            await worker.run()
        except EngineUnreachable:
            print(
                f"{PROG}: cannot reach the engine at {', '.join(args.engines)} after "
                f"{args.connect_timeout:.1f}s",
                file=sys.stderr,
            )
            status = EXIT_UNREACHABLE
        except HandshakeRefused as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            status = EXIT_UNREACHABLE
        except zmq.ZMQError as exc:
            # Raised by connect() for an address ZeroMQ cannot parse.
            names = ", ".join(repr(e) for e in args.engines)
            print(f"{PROG}: bad engine address {names}: {exc}", file=sys.stderr)
            status = EXIT_USAGE
        tg.cancel_scope.cancel()
    return status
