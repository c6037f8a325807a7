"""One life of a runtime under test: a store that may be cut, an executor that counts what it
starts, and the Runtime between them, run in a task so a crash can end it mid-call.

A life ends in one of two ways. Closed, it shuts down as a service does. Crashed (its store
reached the cut), it is abandoned as a SIGKILL leaves a process: the store lets no write
through, the executor starts nothing, and the runtime is torn down by cancellation, never
drained (see :mod:`tether.testing.crash`).

Example::

    life = Life(inner_store, cut=5, options=opts, clock=None)
    await task_group.start(life.run)
    await life.runtime.start(wf, {"n": 0}, execution_id="t-1")
    await life.ended.wait()           # the cut was reached (life.crashed), or close() was called
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import httpx

from tether.agents.kinds import AgentKinds
from tether.clock import Clock, SystemClock
from tether.persistence.contract import Store, Turn
from tether.runtime.code_first.decorators import steps_beside
from tether.runtime.executor import InProcessExecutor
from tether.runtime.runtime import Runtime
from tether.runtime.tools import ToolRegistry
from tether.testing.crash import CountingExecutor, CutStore
from tether.testing.options import TetherOptions


@dataclass(frozen=True)
class Committed:
    """One record a life's store acknowledged, in the order the whole store committed them."""

    execution_id: str
    seq: int
    type: str
    life: int


class OrderedCutStore(CutStore):
    """A :class:`CutStore` that also keeps the order records were committed in, across
    executions (the positions a cut counts), for reports of what happened around a cut."""

    def __init__(self, inner: Store, cut: int, life: int, log: list[Committed]) -> None:
        super().__init__(inner, cut)
        self._life = life
        self._log = log
        #: Set after each acknowledged append (a time driver watches the journal with it).
        self.appended = anyio.Event()

    async def append(self, turn: Turn) -> int:
        seq = await super().append(turn)
        self._log += [
            Committed(turn.execution_id, turn.expected_seq + i, new.type, self._life)
            for i, new in enumerate(turn.records)
        ]
        self.appended.set()
        self.appended = anyio.Event()
        return seq


class Life:
    """A runtime over ``inner`` (cut at ``cut`` records), built from ``options``."""

    def __init__(
        self,
        inner: Store,
        *,
        cut: int,
        number: int,
        options: TetherOptions,
        clock: Clock | None,
        log: list[Committed],
    ) -> None:
        self.number = number
        self.store = OrderedCutStore(inner, cut, number, log)
        self._http = _short_deadline_client(options.call_timeout)
        kinds = AgentKinds(env=dict(options.model_env), http=self._http)
        registry = ToolRegistry(options.tools)
        for builtin in kinds.tools():  # model, http, MCP and eval calls are work items too
            registry.add(builtin)
        bodies = options.code_workflows()
        for body in bodies:  # code-first steps run on this life's pool like tools
            for s in steps_beside(body):
                registry.add(s)
        run_clock = clock or SystemClock()
        #: What this life's pool runs (a code-first workflow started later adds its steps).
        self.executor_tools = registry
        self.executor = CountingExecutor(InProcessExecutor(registry, run_clock), self.store)
        self.runtime = Runtime(
            store=self.store.as_store(), tools=options.tools, executor=self.executor,
            clock=run_clock, node_kinds=kinds, gc_threshold=None, workflows=bodies,
        )  # fmt: skip
        self.ended = anyio.Event()
        self.crashed = False
        self._closing = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Open the runtime, report it started, and hold it until a crash or :meth:`close`."""
        try:
            with anyio.CancelScope() as life_scope:
                async with self.runtime:
                    task_status.started()
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(_then_cancel, self.store.crashed, tg.cancel_scope)
                        tg.start_soon(_then_cancel, self._closing, tg.cancel_scope)
                    if self.store.crashed.is_set():
                        self.crashed = True
                        self.store.kill()
                        life_scope.cancel()  # torn down where it stands, not drained
        finally:
            await self._http.aclose()
            self.ended.set()

    async def close(self) -> None:
        """Shut down in order (a service stopping), and wait until it has."""
        self._closing.set()
        await self.ended.wait()


async def _then_cancel(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class _ShortDeadline(httpx.AsyncBaseTransport):
    """The provider clients' own read timeout, made ``seconds`` at most: a model answer the
    fake server holds back times out in a fraction of a second, through httpx's real timeout
    path, instead of the clients' 60 s."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._inner: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:  # made at the first call: building its TLS context is slow
            self._inner = httpx.AsyncHTTPTransport()
        given: dict[str, Any] = dict(request.extensions.get("timeout") or {})
        request.extensions["timeout"] = {
            k: min(v, self._seconds) if v is not None else self._seconds
            for k, v in {**dict.fromkeys(("connect", "read", "write", "pool")), **given}.items()
        }
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def _short_deadline_client(seconds: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=_ShortDeadline(seconds))
