"""The engine server: the HTTP API (``create_app``) and its configuration (``ServerConfig``).

Example::

    $ tether dev --modules my_tools          # http://127.0.0.1:7700, workers on tcp://...:7701
"""

from tether.server.app import create_app
from tether.server.config import ConfigError, ServerConfig

__all__ = ["ConfigError", "ServerConfig", "create_app"]
