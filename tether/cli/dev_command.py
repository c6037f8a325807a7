"""``tether dev``: run the engine server — the HTTP API, in-process workers, the ZeroMQ port
for ``tether worker`` processes, and cron — on one journal.

Example::

    $ tether dev --modules my_tools
    tether dev: engine on http://127.0.0.1:7700 (journal sqlite:///.tether/runtime.db), workers on tcp://127.0.0.1:7701

Configuration comes from the environment (see :mod:`tether.server.config`); ``--port``,
``--bind`` and ``--db`` override it. SIGTERM or SIGINT stops it gracefully: the HTTP server
stops taking requests, the runtime closes, and a restart resumes every unfinished run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from types import FrameType
from typing import Final

import uvicorn

from tether.cli.worker_command import UsageError, load_tools
from tether.fleet.transport import ZmqFleet
from tether.logs import configure_logging
from tether.persistence import StorageError
from tether.runtime.runtime import Runtime
from tether.server.app import create_app
from tether.server.config import ConfigError, ServerConfig
from tether.server.connections import bounded_protocol, connection_budget, raise_open_file_limit

PROG: Final = "tether dev"
#: A request line and headers longer than this are refused (uvicorn answers 400).
MAX_HEAD_BYTES: Final = 16 * 1024
EXIT_USAGE: Final = 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "dev",
        help="run the engine server (HTTP API, workers, cron) on one journal",
        description="Run the engine: HTTP API, in-process workers, ZeroMQ worker port, cron.",
    )
    p.add_argument("--modules", action="append", default=[], metavar="MOD[,MOD...]",
                   help="modules whose top-level @tool functions the engine runs")  # fmt: skip
    p.add_argument("--port", type=int, default=None, help="HTTP port (TETHER_PORT, 7700)")
    p.add_argument("--bind", default=None, help="HTTP address (TETHER_BIND, 127.0.0.1)")
    p.add_argument("--db", default=None, help="journal URL (TETHER_DATABASE_URL)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        tools = load_tools(args.modules) if args.modules else []
    except (ConfigError, UsageError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.log_level)
    open_files = raise_open_file_limit()  # before the journal and the sockets take any
    fleet = f"tcp://{config.bind}:{config.worker_port}" if config.worker_port else None
    runtime = Runtime(
        config.database_url,
        tools=tools,
        max_concurrency=config.embed_workers,
        transports=[ZmqFleet(fleet)] if fleet else [],
        cron=config.embed_cron,
    )
    print(
        f"{PROG}: engine on http://{config.bind}:{config.port} (journal {config.database_url})"
        + (f", workers on {fleet}" if fleet else ""),
        file=sys.stderr,
        flush=True,
    )
    server = _Server(
        uvicorn.Config(
            create_app(runtime, config, open_runtime=False),
            host=config.bind,
            port=config.port,
            log_level=config.log_level,
            log_config=None,  # uvicorn's lines go through configure_logging's handler too
            lifespan="on",
            http=bounded_protocol(
                connection_budget(config.max_connections, open_files), config.header_timeout_secs
            ),
            timeout_keep_alive=config.keep_alive_secs,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )
    )
    return asyncio.run(_serve(server, runtime))


async def _serve(server: uvicorn.Server, runtime: Runtime) -> int:
    # The runtime opens here, not in the app's lifespan: uvicorn turns a failed lifespan into
    # a traceback and exit 3, and a journal another engine holds is a user's error (one line).
    try:
        async with runtime:
            await server.serve()
    except (StorageError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown (the process then dies of
    the signal); a drained engine that stopped on request exits 0 instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for requests in flight
        self.should_exit = True


def _config(args: argparse.Namespace) -> ServerConfig:
    config = ServerConfig.from_env(os.environ)
    changes: dict[str, object] = {}
    if args.port is not None:
        changes["port"] = args.port
    if args.bind is not None:
        changes["bind"] = args.bind
    if args.db is not None:
        changes["database_url"] = args.db
    if changes:
        config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
        config.check()
    return config
