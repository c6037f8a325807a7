"""The HTTP half of ``tether dev``: the API app served by uvicorn on a socket bound first.

Imported by :mod:`tether.cli.dev_engine` only once the runtime is open and the worker port
listens (a cold engine's imports are most of its start, and Litestar with its OpenAPI
machinery and uvicorn are a third of them): workers rejoin and their steps run while this
module loads in a thread, and the REST API answers a moment later.

Example (what ``dev_engine`` does)::

    server = await asyncio.to_thread(build_server, runtime, config, open_files)
    await server.serve(sockets=[listener])
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Final

import uvicorn

from tether.embedded import Runtime
from tether.server.app import create_app
from tether.server.config import ServerConfig
from tether.server.connections import bounded_protocol
from tether.server.file_limits import connection_budget

#: A request line and headers longer than this are refused (uvicorn answers 400).
MAX_HEAD_BYTES: Final = 16 * 1024


class EngineServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown (the process then dies of
    the signal); a drained engine that stopped on request exits 0 instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for requests in flight
        self.should_exit = True


def build_server(runtime: Runtime, config: ServerConfig, open_files: int) -> EngineServer:
    """The API over ``runtime`` (opened and closed by the caller, not the app's lifespan),
    ready to serve on the caller's listening socket."""
    return EngineServer(
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
