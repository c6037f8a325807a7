"""One MCP server's connection, held open in a task of its own.

anyio wants a task group, and so each of the SDK's context managers, entered and exited in
the same task. A caller's task cannot do that for a connection many calls share, so each
server gets a long-lived task (:meth:`ServerConnection._hold`) that enters the SDK client and
runs every request in a child task; callers hand it requests and wait for their outcome.

A session is one life of a server: from its start (or connect) until it crashes, its
connection closes, or the manager closes it. A request on a session that ends fails with
:class:`McpServerUnavailable`; the next request starts a new session.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

import anyio
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED

from tether.agents.mcp.errors import McpError, McpServerUnavailable, McpTimeout

__all__ = ["Opener", "ServerConnection"]

T = TypeVar("T")

#: Opens an SDK client for the server; its argument is called when the server's side ends.
Opener = Callable[[Callable[[], None]], AbstractAsyncContextManager[Client]]

#: How long a closing session may take to say goodbye (stdio: the SDK's own shutdown is
#: bounded too; HTTP: the session's DELETE).
_CLOSE_GRACE = 5.0


class _Request(Generic[T]):
    """One piece of work for a session's task, and its caller's wait for the outcome."""

    __slots__ = ("done", "error", "op", "scope", "value")

    def __init__(self, op: Callable[[Client], Awaitable[T]]) -> None:
        self.op = op
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()  # cancelled when the caller stops waiting
        self.value: T | None = None
        self.error: BaseException | None = None

    def settle(self, value: T | None = None, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.value, self.error = value, error
            self.done.set()


class _Session:
    """One life of a server connection."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[_Request[Any]](math.inf)
        self.ready = anyio.Event()
        self.scope = anyio.CancelScope()
        self.failure: McpError | None = None
        self.pending: set[_Request[Any]] = set()

    def submit(self, request: _Request[Any]) -> None:
        if self.failure is not None:
            raise self.failure
        self.pending.add(request)
        self.send.send_nowait(request)

    def close(self, failure: McpError) -> None:
        """End this session: no new requests, in-flight ones stopped, then a bounded goodbye."""
        if self.failure is None:
            self.failure = failure
        self.send.close()
        for request in self.pending:
            request.scope.cancel()
        if self.ready.is_set():
            self.scope.deadline = min(self.scope.deadline, anyio.current_time() + _CLOSE_GRACE)
        else:
            self.scope.cancel()  # still starting: nothing to say goodbye to

    def ended(self, failure: McpError) -> None:
        """The session's task is done: fail whatever still waits on it."""
        if self.failure is None:
            self.failure = failure
        for request in self.pending:
            request.settle(error=self.failure)
        self.pending.clear()
        self.receive.close()
        self.ready.set()


class ServerConnection:
    """Calls to one server, through a session its own task holds; restarts it when it dies.

    ``spawn`` starts a task in the owner's task group; ``describe`` turns whatever ending a
    session raised into the error its callers see.
    """

    def __init__(
        self,
        name: str,
        opener: Opener,
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object],
        describe: Callable[[BaseException], McpError],
        connect_timeout: float,
    ) -> None:
        self.name = name
        self._opener = opener
        self._spawn = spawn
        self._describe = describe
        self._connect_timeout = connect_timeout
        self._session: _Session | None = None
        self._closed = False

    async def run(
        self, op: Callable[[Client], Awaitable[T]], what: str, timeout: float | None
    ) -> T:
        """Run ``op`` on the server's client (starting the server first if need be), within
        ``timeout`` seconds in all (None: no limit). Raises :class:`McpServerUnavailable`,
        :class:`McpTimeout`, or what ``op`` raised."""
        request: _Request[T] = _Request(op)
        with anyio.move_on_after(math.inf if timeout is None else timeout) as waited:
            try:
                session = await self._ready_session()
                session.submit(request)
                await request.done.wait()
            finally:
                if not request.done.is_set():  # timed out, or the caller was cancelled
                    request.scope.cancel()
        if waited.cancelled_caught:
            raise McpTimeout(self.name, what, timeout or 0.0)
        if request.error is not None:
            raise request.error
        return request.value  # type: ignore[return-value]  # settled without error: a T

    def close(self) -> None:
        """Close the current session, if any; later calls are refused."""
        self._closed = True
        if self._session is not None:
            self._session.close(McpServerUnavailable(self.name, "the MCP manager was closed"))

    async def _ready_session(self) -> _Session:
        session = self._session
        if session is None or session.failure is not None:
            if self._closed:
                raise McpServerUnavailable(self.name, "the MCP manager was closed")
            session = self._session = _Session()
            self._spawn(lambda: self._hold(session))
        await session.ready.wait()
        if session.failure is not None:
            raise session.failure
        return session

    async def _hold(self, session: _Session) -> None:
        """The session's task: connect, serve requests until the session ends, disconnect."""
        failure: McpError | None = None

        def server_gone() -> None:
            session.close(McpServerUnavailable(self.name, "the server closed the connection"))

        try:
            with session.scope:
                session.scope.deadline = anyio.current_time() + self._connect_timeout
                async with self._opener(server_gone) as client:
                    session.scope.deadline = math.inf
                    session.ready.set()
                    async with anyio.create_task_group() as tg:
                        async for request in session.receive:
                            tg.start_soon(self._serve, session, client, request)
            if session.scope.cancelled_caught and not session.ready.is_set():
                failure = McpServerUnavailable(
                    self.name, f"no MCP handshake within {self._connect_timeout:g}s"
                )
        except Exception as exc:  # every way a session ends becomes its error
            failure = self._describe(exc)
        finally:
            session.ended(failure or McpServerUnavailable(self.name, "the connection was closed"))

    async def _serve(self, session: _Session, client: Client, request: _Request[Any]) -> None:
        try:
            with request.scope:
                value = await request.op(client)
            if request.scope.cancelled_caught:
                request.settle(
                    error=session.failure or McpServerUnavailable(self.name, "cancelled")
                )
            else:
                request.settle(value=value)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                failure = McpServerUnavailable(self.name, "the connection closed mid-call")
                session.close(failure)
                request.settle(error=failure)
            else:
                request.settle(error=exc)
        except Exception as exc:  # handed to the caller, who maps it
            request.settle(error=exc)
        finally:
            if request.done.is_set():
                session.pending.discard(request)
            # else the session itself is being torn down (cancelled from outside this request):
            # it stays pending, for ``_Session.ended`` to fail with the session's error.
