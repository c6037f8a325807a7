"""A deterministic event loop for the body of a code-first workflow.

A workflow function is replayed from the top whenever its execution's actor starts, so what it
does between two durable calls must come out the same every time: no I/O, no wall clock, and
tasks that run in one fixed order. ``WorkflowLoop`` gives it that. It is an asyncio loop that
only runs callbacks, first in first out, while the execution's turn drives it
(:meth:`run_until_quiet`), with itself set as the running loop so that ``asyncio.gather``,
``asyncio.create_task`` and ``asyncio.current_task`` work as usual inside the function. Its
futures are resolved by the driver from the journal, never by I/O; a timer or any I/O is
refused with a message saying what to use instead (``ctx.sleep``, a ``@step``).

Example (what the driver does)::

    loop = WorkflowLoop()
    task = loop.create_task(body())
    loop.run_until_quiet()          # runs until every task waits on a durable call
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, NoReturn

_NO_TIMERS = (
    "a code-first workflow cannot use timers or I/O of its own (they would not replay): "
    "use 'await ctx.sleep(...)' for a durable timer, and put I/O in a @step"
)


class WorkflowLoop(asyncio.AbstractEventLoop):
    """Runs a workflow body's callbacks in order, only inside :meth:`run_until_quiet`."""

    def __init__(self) -> None:
        # (callback, args, context): what asyncio's tasks and futures schedule; no Handle per
        # callback (they never cancel one, and a timer, which would, is refused).
        self._ready: deque[tuple[Callable[..., object], tuple[Any, ...], contextvars.Context]] = (
            deque()
        )
        self._closed = False
        #: The body's async generators: finalized on this loop, never on the caller's (whose
        #: shutdown would close them on the wrong loop and hang).
        self._asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]] = weakref.WeakSet()
        self._hooks = (self._first_iteration, self._finalize)  # bound once, set per drive
        #: The first exception a callback let escape (the driver reports it).
        self.crashed: BaseException | None = None

    def run_until_quiet(self) -> None:
        """Run callbacks until none is ready: every task then waits on a durable call (or has
        ended). This loop is the running loop meanwhile; the caller's is put back after."""
        if not self._ready:
            return  # the turn's second look, after its records were folded: nothing to run
        outer = asyncio.events._get_running_loop()
        outer_hooks = sys.get_asyncgen_hooks()
        asyncio.events._set_running_loop(self)
        sys.set_asyncgen_hooks(*self._hooks)
        try:
            ready = self._ready
            while ready:
                callback, args, context = ready.popleft()
                try:
                    context.run(callback, *args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # what Handle._run does with it
                    self.call_exception_handler({"message": "workflow callback", "exception": exc})
        finally:
            sys.set_asyncgen_hooks(*outer_hooks)
            asyncio.events._set_running_loop(outer)

    def _first_iteration(self, agen: AsyncGenerator[Any, Any]) -> None:
        self._asyncgens.add(agen)

    def _finalize(self, agen: AsyncGenerator[Any, Any]) -> None:
        # Garbage-collected unfinished: closed at the next drive, on this loop.
        self._asyncgens.discard(agen)
        if not self._closed:
            self._ready.append((_close_quietly, (agen,), contextvars.copy_context()))

    # -- what asyncio's futures and tasks use ---------------------------------------------

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        self._ready.append((callback, args, context or contextvars.copy_context()))
        return _NO_HANDLE

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return asyncio.events._get_running_loop() is self

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        # Left unfinished, not closed: closing would run the body's code (its finally
        # blocks) outside a turn.
        self._closed = True
        self._ready.clear()
        self._asyncgens = weakref.WeakSet()

    def get_task_factory(self) -> None:
        return None  # anyio's task groups (used by libraries in a body) ask

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # A callback raised (not a task: tasks keep their exception). Kept for the driver,
        # which fails the turn with it rather than letting it vanish into a log.
        exc = context.get("exception")
        if self.crashed is None:
            self.crashed = (
                exc
                if isinstance(exc, BaseException)
                else RuntimeError(str(context.get("message", "a workflow callback failed")))
            )

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.call_exception_handler(context)

    # -- what a workflow body must not do -------------------------------------------------

    def time(self) -> float:
        raise NonDurableAwait(_NO_TIMERS)

    def call_later(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise NonDurableAwait(_NO_TIMERS)

    def call_at(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise NonDurableAwait(_NO_TIMERS)

    def run_in_executor(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise NonDurableAwait(_NO_TIMERS)

    def call_soon_threadsafe(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise NonDurableAwait(_NO_TIMERS)


class _NoHandle(asyncio.Handle):
    """What ``call_soon`` returns: its callers in asyncio (tasks, futures) ignore it."""

    def __init__(self) -> None:
        pass

    def cancel(self) -> None:
        raise NonDurableAwait("a workflow body's scheduled callbacks cannot be cancelled")


def _close_quietly(agen: AsyncGenerator[Any, Any]) -> None:
    with contextlib.suppress(BaseException):
        agen.aclose().send(None)


class NonDurableAwait(RuntimeError):
    """A workflow body used a timer, a thread or I/O: it would not replay."""


_NO_HANDLE = _NoHandle()
