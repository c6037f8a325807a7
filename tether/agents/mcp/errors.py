"""What can go wrong talking to an MCP server, named for what the runtime does about it.

The runtime's tool outcome (``tether.runtime.tool_outcome``) fails a node at once for a
``NonRetryableError`` and spends one attempt for anything else, so each error here takes the
side its name promises:

* retryable: :class:`McpServerUnavailable` (crashed, unreachable, closed mid-call; the next
  call starts or reconnects the server) and :class:`McpTimeout`.
* not retryable: :class:`McpConfigError`, :class:`McpServerNotStartable`, :class:`McpAccessDenied`,
  :class:`McpToolNotFound`, :class:`McpToolError`, :class:`McpBadArguments`,
  :class:`McpBadResponse`: trying again would give the same answer.

Every message names the server (and the tool, for a call); none carries a header or
environment value, which may be a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from tether.errors import NonRetryableError, TetherError

__all__ = [
    "McpAccessDenied",
    "McpBadArguments",
    "McpBadResponse",
    "McpConfigError",
    "McpError",
    "McpServerNotStartable",
    "McpServerUnavailable",
    "McpTimeout",
    "McpToolError",
    "McpToolNotFound",
]


class McpError(TetherError):
    """Base of the MCP client's errors; ``retryable`` says whether another attempt may help."""

    retryable: ClassVar[bool] = True


class McpServerUnavailable(McpError):
    """The server crashed, closed the connection or could not be reached (retryable: the call
    costs one attempt, and the next call starts a new server process or reconnects)."""

    def __init__(self, server: str, problem: str) -> None:
        super().__init__(f"MCP server {server!r} is unavailable: {problem}")
        self.server = server
        self.problem = problem


class McpTimeout(McpError, TimeoutError):
    """A call got no answer within its timeout (retryable); the server was asked to cancel it."""

    def __init__(self, server: str, what: str, timeout: float) -> None:
        super().__init__(f"MCP server {server!r}: {what} timed out after {timeout:g}s")
        self.server = server
        self.timeout = timeout


class McpConfigError(McpError, NonRetryableError):
    """A server's configuration is wrong: a missing or malformed field, an unknown server, a
    ``${VAR}`` with no value. Names the server and the field, never a value."""

    retryable: ClassVar[bool] = False


class McpServerNotStartable(McpError, NonRetryableError):
    """A stdio server's command does not exist or may not be run (not retryable)."""

    retryable: ClassVar[bool] = False

    def __init__(self, server: str, problem: str) -> None:
        super().__init__(f"MCP server {server!r} cannot be started: {problem}")
        self.server = server


class McpAccessDenied(McpError, NonRetryableError):
    """An HTTP server answered 401 or 403: its headers (a token) are missing or wrong, which
    another attempt will not change."""

    retryable: ClassVar[bool] = False

    def __init__(self, server: str, status: int) -> None:
        super().__init__(
            f"MCP server {server!r} refused access (HTTP {status}): check its headers' values"
        )
        self.server = server
        self.status = status


class McpToolNotFound(McpError, NonRetryableError):
    """The server has no tool of that name (not retryable); lists the tools it has."""

    retryable: ClassVar[bool] = False

    def __init__(self, server: str, tool: str, available: Iterable[str]) -> None:
        names = sorted(available)
        has = ", ".join(names) if names else "no tools"
        super().__init__(f"MCP server {server!r} has no tool {tool!r}; it has: {has}")
        self.server = server
        self.tool = tool
        self.available = tuple(names)


class McpToolError(McpError, NonRetryableError):
    """The tool ran and reported an error (an ``isError`` result; not retryable): ``text`` is
    what it said, for the model or the operator to act on."""

    retryable: ClassVar[bool] = False

    def __init__(self, server: str, tool: str, text: str) -> None:
        super().__init__(f"MCP tool {server}.{tool} reported an error: {text}")
        self.server = server
        self.tool = tool
        self.text = text


class McpBadArguments(McpError, NonRetryableError):
    """The server refused the arguments as invalid for the tool (JSON-RPC invalid params;
    not retryable)."""

    retryable: ClassVar[bool] = False

    def __init__(self, server: str, tool: str, problem: str) -> None:
        super().__init__(f"MCP tool {server}.{tool} refused its arguments: {problem}")
        self.server = server
        self.tool = tool
        self.problem = problem


class McpBadResponse(McpError, NonRetryableError):
    """The server answered with an error or a result this client cannot use (not retryable:
    the same request would get the same answer)."""

    retryable: ClassVar[bool] = False

    def __init__(self, server: str, what: str, problem: str) -> None:
        super().__init__(f"MCP server {server!r}: {what} failed: {problem}")
        self.server = server
        self.problem = problem
