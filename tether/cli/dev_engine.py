"""The engine ``tether dev`` runs (:mod:`tether.cli.dev_command` parses its arguments): the
runtime on the journal, the HTTP API served by uvicorn on a socket bound first, and the ZeroMQ
port for ``tether worker`` processes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Final

import uvicorn
import zmq

from tether.cli.dev_command import PROG
from tether.cli.worker_command import UsageError, load_modules
from tether.embedded import Runtime
from tether.fleet.keys import EngineKeys, KeyFileError, beyond_loopback
from tether.fleet.transport import ZmqFleet
from tether.governance.keys import keys_dir, load_signing_key
from tether.governance.redaction.settings import redaction_key
from tether.logs import configure_logging
from tether.persistence import StorageError
from tether.persistence.sqlite.lock import wait_until_free
from tether.persistence.urls import display_url, sqlite_path
from tether.runtime.code_first.decorators import CodeWorkflow
from tether.runtime.tools import Tool
from tether.server.app import create_app
from tether.server.config import ConfigError, ServerConfig, journal_url
from tether.server.connections import bounded_protocol, connection_budget, raise_open_file_limit

#: A standby binds the HTTP port its predecessor held this many times, this far apart.
STANDBY_BIND_TRIES: Final = 100
STANDBY_BIND_PAUSE_SECS: Final = 0.01
#: A request line and headers longer than this are refused (uvicorn answers 400).
MAX_HEAD_BYTES: Final = 16 * 1024
EXIT_USAGE: Final = 2


def run_engine(args: argparse.Namespace) -> int:
    """Run the engine with the parsed ``args`` of ``tether dev`` until SIGTERM or SIGINT; the
    exit status."""
    fleet = None
    try:
        config = _config(args)
        if config.worker_port:
            endpoint = f"tcp://{config.bind}:{config.worker_port}"
            fleet = ZmqFleet(endpoint, keys=_fleet_keys(args, endpoint))
        modules = load_modules(args.modules) if args.modules else []
        tools = [v for m in modules for v in vars(m).values() if isinstance(v, Tool)]
        bodies = [v for m in modules for v in vars(m).values() if isinstance(v, CodeWorkflow)]
        # Loaded here as well as by the app: an unusable key file is one line (AuditKeyError
        # is a ValueError), not a failed lifespan's traceback.
        audit_key = load_signing_key(keys_dir())
        if config.redact is not None and config.redact.mode == "hash":
            redaction_key(os.environ, keys_dir())  # an unusable key: one line, now
    except (ConfigError, UsageError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.log_level)
    open_files = raise_open_file_limit()  # before the journal and the sockets take any
    standby = bool(getattr(args, "standby", False))
    journal = sqlite_path(config.database_url) if standby else None
    if standby and journal is None:
        print(f"{PROG}: --standby needs a SQLite journal (on Postgres, run several engines "
              "with --shared)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    listener = None if journal is not None else _listen_or_say(config)
    if journal is None and listener is None:
        return 1
    runtime = Runtime(
        config.database_url,
        tools=tools,
        workflows=bodies,
        max_concurrency=config.embed_workers,
        transports=[fleet] if fleet else [],
        cron=config.embed_cron,
        shared=config.shared,
        ownership_ttl_ms=config.ownership_ttl_ms,
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
    if journal is not None:  # a warm spare: everything is loaded and built; only the journal waits
        listener = _take_over(journal, config)
        if listener is None:
            return 1
    assert listener is not None
    print(
        f"{PROG}: engine on http://{config.bind}:{config.port}"
        f" (journal {display_url(config.database_url)}; dashboard /ui/)"
        + (f", workers on {fleet.endpoint}" if fleet else "")
        + (f", audit heads signed by {audit_key.key_id}" if audit_key else "")
        + (f", shared as engine {runtime.engine_id}" if config.shared else ""),
        file=sys.stderr,
        flush=True,
    )
    return asyncio.run(_serve(server, runtime, fleet.endpoint if fleet else None, listener))


def _listen_or_say(config: ServerConfig) -> socket.socket | None:
    try:
        # Bound here and handed to uvicorn: a taken port is one line and exit 1, said before
        # the engine says it listens (uvicorn logs it and exits 3 after starting the app).
        return _listen(config.bind, config.port)
    except OSError as exc:
        print(
            f"{PROG}: cannot listen on http://{config.bind}:{config.port}: "
            f"{exc.strerror or exc} (choose another --port)",
            file=sys.stderr,
        )
        return None


def _take_over(journal: Path, config: ServerConfig) -> socket.socket | None:
    """Wait for the engine writing ``journal`` to stop, then bind its HTTP port (freed with
    it: the kernel closes a dead process's sockets as it drops its lock, so a few tries)."""

    def held(pid: int | None) -> None:
        by = f" (pid {pid})" if pid is not None else ""
        print(f"{PROG}: standby for {journal}: its engine{by} writes it; waiting for it to stop",
              file=sys.stderr, flush=True)  # fmt: skip

    wait_until_free(journal, held)
    for _ in range(STANDBY_BIND_TRIES - 1):
        try:
            return _listen(config.bind, config.port)
        except OSError:
            time.sleep(STANDBY_BIND_PAUSE_SECS)
    return _listen_or_say(config)


def _listen(host: str, port: int) -> socket.socket:
    """The API's listening socket on ``host:port`` (what uvicorn would bind)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def _serve(
    server: uvicorn.Server, runtime: Runtime, endpoint: str | None, listener: socket.socket
) -> int:
    # The runtime opens here, not in the app's lifespan: uvicorn turns a failed lifespan into
    # a traceback and exit 3, and a journal another engine holds is a user's error (one line).
    try:
        async with runtime:
            await server.serve(sockets=[listener])
    except (StorageError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except zmq.ZMQError as exc:  # the worker port: taken, or an address ZeroMQ refuses
        print(
            f"{PROG}: cannot listen for workers on {endpoint}: {exc} (choose another "
            "--worker-port, or 0 for none)",
            file=sys.stderr,
        )
        return 1
    return 0


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown (the process then dies of
    the signal); a drained engine that stopped on request exits 0 instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for requests in flight
        self.should_exit = True


def _fleet_keys(args: argparse.Namespace, endpoint: str) -> EngineKeys | None:
    secret = args.fleet_key or os.environ.get("TETHER_FLEET_KEY") or None
    workers = args.fleet_worker_keys or os.environ.get("TETHER_FLEET_WORKER_KEYS") or None
    if secret is None and workers is None:
        if beyond_loopback(endpoint):
            raise UsageError(
                f"the worker port {endpoint} listens beyond this machine: set TETHER_FLEET_KEY "
                "and TETHER_FLEET_WORKER_KEYS (see README, 'Workers across hosts'), bind "
                "127.0.0.1, or TETHER_WORKER_PORT=0"
            )
        return None
    if secret is None or workers is None:
        raise UsageError("TETHER_FLEET_KEY and TETHER_FLEET_WORKER_KEYS go together: set both")
    try:
        return EngineKeys.from_files(secret, workers)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None


def _config(args: argparse.Namespace) -> ServerConfig:
    config = ServerConfig.from_env(os.environ)
    changes: dict[str, object] = {}
    if args.port is not None:
        changes["port"] = args.port
    if args.bind is not None:
        changes["bind"] = args.bind
    if args.db is not None:
        changes["database_url"] = journal_url(args.db)
    if args.worker_port is not None:
        changes["worker_port"] = args.worker_port
    if args.shared:
        changes["shared"] = True
    for flag, value, low in (("--port", args.port, 1), ("--worker-port", args.worker_port, 0)):
        if value is not None and not low <= value <= 65535:
            raise ConfigError(f"{flag} must be a port number ({low}-65535), got {value}")
    if changes:
        config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
        config.check()
    return config
