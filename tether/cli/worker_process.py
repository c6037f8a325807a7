"""The process ``tether worker`` runs (:mod:`tether.cli.worker_command` parses its arguments
and loads the modules): its tools and the built-in agent kinds served to each engine named,
until a signal drains it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Final

import anyio
import zmq

from tether.agents.kinds import AgentKinds
from tether.cli.worker_command import EXIT_USAGE, PROG, UsageError, load_tools
from tether.fleet.connection import EngineUnreachable, HandshakeRefused
from tether.fleet.keys import KeyFileError, WorkerKeys
from tether.fleet.worker_set import WorkerSet
from tether.logs import configure_logging
from tether.runtime.tools import ToolRegistry

EXIT_UNREACHABLE: Final = 1

log = logging.getLogger("tether.worker")


def run_worker(args: argparse.Namespace) -> int:
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
