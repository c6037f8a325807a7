"""The engine ``tether dev`` runs (:mod:`tether.cli.dev_command` parses its arguments): the
runtime on the journal, the ZeroMQ port for ``tether worker`` processes, and the HTTP API served
by uvicorn on a socket bound first.

A cold engine opens the journal and the worker port before it imports the HTTP layer
(:mod:`tether.cli.dev_http`, loaded in a thread while the runtime serves): after a crash its
workers rejoin and their steps run while Litestar loads; the REST API answers a moment later,
on the socket bound at the start. A standby (``--standby``) builds everything before it waits.
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
from typing import TYPE_CHECKING, Final

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
from tether.server.config import ConfigError, ServerConfig, journal_url
from tether.server.file_limits import raise_open_file_limit

if TYPE_CHECKING:
    from tether.cli.dev_http import EngineServer

#: A standby binds the HTTP port its predecessor held this many times, this far apart.
STANDBY_BIND_TRIES: Final = 100
STANDBY_BIND_PAUSE_SECS: Final = 0.01
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
    server = None
    if journal is not None:  # a warm spare: everything is loaded and built; only the journal waits
        from tether.cli.dev_http import build_server

        server = build_server(runtime, config, open_files)
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
    started = _Start(runtime, config, open_files, fleet.endpoint if fleet else None, listener)
    return asyncio.run(started.serve(server))


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


@dataclasses.dataclass
class _Start:
    """What ``tether dev`` serves once its arguments are read."""

    runtime: Runtime
    config: ServerConfig
    open_files: int
    endpoint: str | None
    listener: socket.socket

    async def serve(self, server: EngineServer | None) -> int:
        """Open the runtime, build the HTTP server unless ``server`` is built already, serve
        until SIGTERM or SIGINT; the exit status."""
        # The runtime opens here, not in the app's lifespan: uvicorn turns a failed lifespan
        # into a traceback and exit 3, and a journal another engine holds is a user's error
        # (one line).
        try:
            async with self.runtime:
                if server is None:
                    server = await self._build()
                if server is not None:  # None: asked to stop while the HTTP layer loaded
                    await server.serve(sockets=[self.listener])
        except (StorageError, OSError) as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        except zmq.ZMQError as exc:  # the worker port: taken, or an address ZeroMQ refuses
            print(
                f"{PROG}: cannot listen for workers on {self.endpoint}: {exc} (choose another "
                "--worker-port, or 0 for none)",
                file=sys.stderr,
            )
            return 1
        return 0

    async def _build(self) -> EngineServer | None:
        """The HTTP server, its modules imported in a thread while the runtime serves its
        workers; None if SIGTERM or SIGINT came meanwhile (the runtime then closes as on a
        drained stop: uvicorn's own handlers take over only once it serves)."""
        loop = asyncio.get_running_loop()
        asked_to_stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, asked_to_stop.set)
        try:
            server = await asyncio.to_thread(_build_server, self.runtime, self.config,
                                             self.open_files)  # fmt: skip
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return None if asked_to_stop.is_set() else server


def _build_server(runtime: Runtime, config: ServerConfig, open_files: int) -> EngineServer:
    from tether.cli.dev_http import build_server

    return build_server(runtime, config, open_files)


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
