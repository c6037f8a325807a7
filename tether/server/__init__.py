"""The engine server: the HTTP API (``create_app``) and its configuration (``ServerConfig``).

``create_app`` is imported on first use: the configuration alone (what ``tether dev`` reads
before it opens the journal) does not load Litestar.

Example::

    $ tether dev --modules my_tools          # http://127.0.0.1:7700, workers on tcp://...:7701
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.server.config import ConfigError, ServerConfig

if TYPE_CHECKING:
    from tether.server.app import create_app

__all__ = ["ConfigError", "ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tether.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
