"""``tether dev``: run the engine server — the HTTP API, in-process workers, the ZeroMQ port
for ``tether worker`` processes, and cron — on one journal.

Example::

    $ tether dev --modules my_tools
    tether dev: engine on http://127.0.0.1:7700 (journal sqlite:///.tether/runtime.db), workers on tcp://127.0.0.1:7701

Configuration comes from the environment (see :mod:`tether.server.config`); ``--port``,
``--bind`` and ``--db`` override it. The worker port listens on the same address; beyond
loopback it needs worker keys (I14): ``--fleet-key`` / ``TETHER_FLEET_KEY`` (the engine's
``NAME.key_secret``) and ``--fleet-worker-keys`` / ``TETHER_FLEET_WORKER_KEYS`` (a directory of
the accepted workers' ``NAME.key`` files); without them it refuses to start (exit 2).
SIGTERM or SIGINT stops it gracefully: the HTTP server stops taking requests, the runtime
closes, and a restart resumes every unfinished run.
"""

from __future__ import annotations

import argparse
from typing import Final

PROG: Final = "tether dev"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "dev",
        help="run the engine server (HTTP API, workers, cron) on one journal",
        description="Run the engine: HTTP API, in-process workers, ZeroMQ worker port, cron.",
    )
    p.add_argument("--modules", action="append", default=[], metavar="MOD[,MOD...]",
                   help="modules whose top-level @tool functions the engine runs, and whose "
                        "@workflow functions it serves")  # fmt: skip
    p.add_argument("--port", type=int, default=None, help="HTTP port (TETHER_PORT, 7700)")
    p.add_argument("--bind", default=None, help="HTTP address (TETHER_BIND, 127.0.0.1)")
    p.add_argument(
        "--db",
        default=None,
        help="the journal: a file path, a sqlite:/// or a postgresql:// URL (TETHER_DATABASE_URL)",
    )
    p.add_argument("--worker-port", type=int, default=None,
                   help="ZeroMQ port for tether worker processes, 0 for none "
                   "(TETHER_WORKER_PORT, 7701)")  # fmt: skip
    p.add_argument("--fleet-key", default=None, metavar="FILE",
                   help="the engine's CURVE key pair for the worker port, NAME.key_secret "
                   "(TETHER_FLEET_KEY)")  # fmt: skip
    p.add_argument("--fleet-worker-keys", default=None, metavar="DIR",
                   help="directory of the public keys (NAME.key) of the workers to accept "
                   "(TETHER_FLEET_WORKER_KEYS)")  # fmt: skip
    p.add_argument("--shared", action="store_true", default=None,
                   help="one of several engines on one Postgres database: each run is owned "
                   "by one engine at a time and moves when it stops (TETHER_SHARED)")  # fmt: skip
    p.add_argument("--standby", action="store_true",
                   help="start now, then wait for the engine writing this SQLite journal "
                   "to stop (SIGKILL included) and take over at once: a warm spare")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The engine's modules (the runtime, the HTTP app, uvicorn, ZeroMQ) load here, when
    # `tether dev` runs, not when the `tether` parser is built for any command.
    from tether.cli.dev_engine import run_engine

    return run_engine(args)
