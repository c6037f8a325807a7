"""The driver of a code-first workflow's body: durable calls by position, checked on replay.

Each durable call the body makes (a step, a timer, an approval, an event, a recorded value)
takes the next *position*; its node id is what it is and where (``analyze#3``,
``@sleep#4``, ``@approval:pay#5``). A call beyond the journal becomes a record that the turn
commits before anything follows from it (I1); a call the journal holds at its position is
answered from the state folded from the journal (a step's recorded result, without running it
again). A call that is not the one the journal holds at its position (another step, another
input) is a divergence: the driver raises :class:`NondeterminismError` naming the position,
the recorded call and the new one, and the turn commits nothing (I8).

The driver lives with its execution's actor between turns; it is only a cache of where the body
stands: a new one built from the same state (after a restart, or after a turn that did not
commit) replays the body from the top to the same point.

Example (what the planner does each turn)::

    records = driver.advance(state, now_ms, rng)   # the new calls, or how the body ended
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from tether.runtime.code_first.fold import CHUNK, finished_call, input_digest, position_of
from tether.runtime.code_first.workflow_loop import WorkflowLoop
from tether.runtime.planner import segment_id
from tether.runtime.records import (
    ExecutionCompleted,
    ExecutionFailed,
    NodeCompleted,
    NodeScheduled,
    Record,
    SegmentBoundary,
    private_copy,
)
from tether.runtime.state import ExecutionState
from tether.runtime.state_types import CallResult

if TYPE_CHECKING:
    from tether.runtime.code_first.context import WorkflowContext
    from tether.runtime.code_first.decorators import CodeWorkflow, Step

_DRIVER: contextvars.ContextVar[CodeDriver | None] = contextvars.ContextVar(
    "tether_code_driver", default=None
)
_encoder = msgspec.msgpack.Encoder()


def current_driver() -> CodeDriver | None:
    """The driver of the workflow body running now (None outside a workflow body)."""
    return _DRIVER.get()


def current_context() -> WorkflowContext | None:
    """The ``ctx`` of the workflow body running now (None outside one): for libraries that
    make their calls durable inside a body without being handed ``ctx``.

    Example::

        ctx = current_context()
        when = ctx.now() if ctx is not None else datetime.now(UTC)
    """
    driver = _DRIVER.get()
    return None if driver is None else driver.context


class NondeterminismError(Exception):
    """A replayed workflow body called something else than its journal holds (I8)."""

    def __init__(self, execution_id: str, position: int, recorded: str, now: str) -> None:
        self.position = position
        super().__init__(
            f"execution {execution_id}: the workflow's code no longer matches its journal at "
            f"position {position}: the journal holds {recorded}, the code now calls {now} "
            "(to change a running workflow on purpose, gate the change with ctx.patched(...))"
        )


class ContinueAsNew(BaseException):
    """Raised by ``ctx.continue_as_new``: the body ends here and a new segment of the run
    starts it again with ``input`` and an empty journal. A BaseException, so that a body's
    ``except Exception`` does not swallow it."""

    def __init__(self, input: dict[str, Any]) -> None:
        self.input = input
        super().__init__("continue as new")


class StepFailed(Exception):
    """A step failed for good (its last attempt, or an error that is not retried)."""

    def __init__(self, node_id: str, error: str) -> None:
        self.node_id = node_id
        self.error = error
        super().__init__(f"step {node_id} failed: {error}")


#: Turns a finished call's recorded value into what the body's await returns (or raises).
Resolver = Callable[[Any], Any]


class CodeDriver:
    """Runs one execution's workflow body on a :class:`WorkflowLoop` against its state."""

    def __init__(
        self, wf: CodeWorkflow, state: ExecutionState, ensure_step: Callable[[Step], None]
    ) -> None:
        self._wf = wf
        self._ensure_step = ensure_step
        # Abstract only to type checkers: what a body may use is implemented (the rest raise).
        self._loop = WorkflowLoop()  # type: ignore[abstract]
        self._state = state
        self._recorded = {p: n for n in state.nodes if (p := position_of(n)) is not None}
        for chunk in state.calls.values():
            self._recorded.update((p, n) for n in chunk if (p := position_of(n)) is not None)
        self._next = 1
        #: Calls the body awaits: their future, how their value is returned, their chunk.
        self._pending: dict[str, tuple[asyncio.Future[Any], Resolver, int]] = {}
        self._emitted: list[Record] = []
        self._main: asyncio.Task[Any] | None = None
        self._now_ms = 0
        self._rng = random.Random(0)
        self._diverged: NondeterminismError | None = None
        self._steps_seen: set[str] = set()
        #: The body's ``ctx`` once it has started.
        self.context: WorkflowContext | None = None

    # -- the turn's side ------------------------------------------------------------------

    def advance(self, state: ExecutionState, now_ms: int, rng: random.Random) -> list[Record]:
        """Resolve what the state settled, run the body until it waits, and return the
        records of its new calls; once it has returned or raised, the record that ends the
        run. Raises NondeterminismError when the body diverged from the journal."""
        self._state, self._now_ms, self._rng = state, now_ms, rng
        if self._main is None:
            self._main = self._start_body(state)
        self._run_in_completion_order()
        if self._diverged is not None:
            raise self._diverged
        if self._loop.crashed is not None:
            raise self._loop.crashed
        out, self._emitted = self._emitted, []
        if out:
            return out
        if self._main.done():
            return self._ending(self._main)
        if state.running == 0 and not state.waits and not state.ready:
            return [ExecutionFailed(at_ms=now_ms, error=_STALLED)]
        return []

    def close(self) -> None:
        """Drop the body (the actor stops, or the turn did not commit): its tasks are left
        unfinished rather than cancelled, since cancelling would run its code again."""
        self._loop.close()

    def _start_body(self, state: ExecutionState) -> asyncio.Task[Any]:
        from tether.runtime.code_first.context import WorkflowContext

        ctx = self.context = WorkflowContext(self, state.execution_id, state.input)
        args = (ctx, private_copy(state.input)) if self._wf.takes_input else (ctx,)
        context = contextvars.copy_context()
        context.run(_DRIVER.set, self)
        return self._loop.create_task(self._wf.fn(*args), name=self._wf.ref, context=context)

    def _ending(self, main: asyncio.Task[Any]) -> list[Record]:
        at = self._now_ms
        # However the body ended, a replay that stopped short of calls the journal holds
        # took another path: that is I8's to report, not the run's failure to record.
        unreached = sorted(p for p in self._recorded if p >= self._next)
        ended = main.exception() if not main.cancelled() else None
        if isinstance(ended, ContinueAsNew) and unreached[:1] == [self._next]:
            unreached.pop(0)  # its marker, recorded: a fork cut between it and the boundary
        if unreached and not isinstance(ended, NondeterminismError):
            p = unreached[0]
            raise NondeterminismError(
                self._state.execution_id, p, self._recorded[p], "nothing (the body ended)"
            )
        if main.cancelled():
            return [ExecutionFailed(at_ms=at, error="the workflow body was cancelled")]
        exc = main.exception()
        if isinstance(exc, ContinueAsNew):
            return self._continued(exc.input)
        if exc is not None:
            return [ExecutionFailed(at_ms=at, error=f"{type(exc).__name__}: {exc}")]
        result = main.result()
        try:
            _encoder.encode(result)
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
            error = f"the workflow returned a value the journal cannot hold: {e}"
            return [ExecutionFailed(at_ms=at, error=error)]
        return [ExecutionCompleted(at_ms=at, result=result)]

    def _continued(self, new_input: dict[str, Any]) -> list[Record]:
        """The new segment's input, recorded, then the boundary (its id is fixed by where it
        is in the journal, so a retry after a crash opens the same segment)."""
        state = self._state
        try:
            _encoder.encode(new_input)
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
            error = f"ctx.continue_as_new: an input the journal cannot hold: {e}"
            return [ExecutionFailed(at_ms=self._now_ms, error=error)]
        pos = self._take()
        recorded = self._recorded.get(pos)
        if recorded is not None and recorded != f"@continue_as_new#{pos}":
            raise self.diverge(pos, recorded, f"@continue_as_new#{pos}")
        marker = NodeCompleted(at_ms=self._now_ms, node_id=f"@continue_as_new#{pos}",
                               dispatch=0, attempt=0, output=new_input)  # fmt: skip
        root = state.root_execution_id or state.execution_id
        # The marker and the boundary commit in one turn, so only a fork at the marker's
        # record (rt.fork) finds the marker journaled alone: the boundary then follows it.
        head = [] if recorded is not None else [marker]
        nxt = segment_id(root, state.segment + 1, state.last_seq + 1 + len(head))
        return [*head, SegmentBoundary(at_ms=self._now_ms, next_execution_id=nxt)]

    def _run_in_completion_order(self) -> None:
        """Run the body, handing it finished calls one at a time in the order the journal
        finished them, until it waits on calls still in flight. Live and in a replay alike:
        a replayed branch of a gather must not run through its recorded calls while the
        other branch waits, or the two would take their next positions in another order."""
        self._loop.run_until_quiet()
        calls = self._state.calls
        while self._diverged is None:
            first: CallResult | None = None
            first_id = ""
            for node_id, (_, _, chunk) in self._pending.items():
                done = calls.get(chunk, _NO_CALLS).get(node_id)
                if done is not None and (first is None or done.seq < first.seq):
                    first, first_id = done, node_id
            if first is None:
                return
            self._resolve(first_id, first)
            self._loop.run_until_quiet()

    def _resolve(self, node_id: str, done: CallResult) -> None:
        fut, resolver, _ = self._pending.pop(node_id)
        if fut.done():
            return
        if done.failed:
            fut.set_exception(StepFailed(node_id, str(done.value)))
            return
        value = done.value
        if type(value) not in _IMMUTABLE:  # the body gets its own copy of what state holds
            value = private_copy(value)
        try:
            fut.set_result(resolver(value))
        except BaseException as exc:  # the resolver's own verdict (a wait timed out)
            fut.set_exception(exc)

    # -- the body's side ------------------------------------------------------------------

    async def call_step(self, s: Step, args: dict[str, Any]) -> Any:
        """A step call: its recorded result, or its hand-out journaled and then awaited."""
        if s.name not in self._steps_seen:
            self._ensure_step(s)
            self._steps_seen.add(s.name)
        pos = self._take()
        node_id = f"{s.name}#{pos}"

        def scheduled() -> Record:
            return NodeScheduled(
                at_ms=self._now_ms, node_id=node_id, attempt=1, dispatch=1, input=args
            )

        return await self.durable(pos, node_id, scheduled, _same, args)

    def durable(
        self,
        pos: int,
        node_id: str,
        record: Callable[[], Record],
        resolver: Resolver,
        args: dict[str, Any] | None = None,
    ) -> asyncio.Future[Any]:
        """The future of the durable call at ``pos``: journaled now if it is new."""
        recorded = self._recorded.get(pos)
        if recorded is None:
            self._emitted.append(record())
            self._recorded[pos] = node_id
        elif recorded != node_id:
            raise self.diverge(pos, recorded, node_id)
        elif args is not None and not self._same_input(node_id, args):
            raise self.diverge(pos, f"{node_id} with another input", f"it with input {args!r}")
        fut: asyncio.Future[Any] = self._loop.create_future()
        # Resolved in completion order (above), even when it finished long ago (a replay).
        self._pending[node_id] = (fut, resolver, pos // CHUNK)
        return fut

    def _same_input(self, node_id: str, args: dict[str, Any]) -> bool:
        digest = input_digest(private_copy(args))
        run = self._state.nodes.get(node_id)
        if run is not None:  # still in flight: its input is in the state
            return input_digest(run.input) == digest
        done = finished_call(self._state, node_id)
        return done is None or done.input_digest is None or done.input_digest == digest

    def value(self, what: str, make: Callable[[], Any]) -> Any:
        """A value made once (a time, an id, a random number) and replayed from the journal."""
        pos = self._take()
        node_id = f"@{what}#{pos}"
        recorded = self._recorded.get(pos)
        if recorded is None:
            value = make()
            self._emitted.append(
                NodeCompleted(
                    at_ms=self._now_ms, node_id=node_id, dispatch=0, attempt=0, output=value
                )
            )
            self._recorded[pos] = node_id
            return value
        if recorded != node_id:
            raise self.diverge(pos, recorded, node_id)
        done = finished_call(self._state, node_id)
        return None if done is None else private_copy(done.value)

    def patched(self, change_id: str) -> bool:
        """True where the journal has this change's marker or ends; False on a replay of a
        run that took the old path here (the position is left to the old code)."""
        pos = self._next
        node_id = f"@patch:{change_id}#{pos}"
        recorded = self._recorded.get(pos)
        if recorded is not None and recorded != node_id:
            return False
        self.value(f"patch:{change_id}", lambda: True)
        return True

    def next_position(self) -> int:
        return self._take()

    def peek_position(self) -> int:
        """The position the next durable call will take."""
        return self._next

    @property
    def state(self) -> ExecutionState:
        return self._state

    @property
    def now_ms(self) -> int:
        return self._now_ms

    @property
    def rng(self) -> random.Random:
        return self._rng

    def diverge(self, pos: int, recorded: str, now: str) -> NondeterminismError:
        exc = NondeterminismError(self._state.execution_id, pos, recorded, now)
        if self._diverged is None:
            self._diverged = exc  # raised by advance even if the body catches it
        return exc

    def _take(self) -> int:
        pos = self._next
        self._next += 1
        return pos


_NO_CALLS: dict[str, CallResult] = {}
#: Values returned to the body as they are (no copy needed: nothing in them can change).
_IMMUTABLE = frozenset({int, float, str, bool, bytes, type(None)})


def _same(value: Any) -> Any:
    return value


_STALLED = (
    "the workflow body waits on something that is not a durable call (a future or task made "
    "outside it?): await steps and ctx calls only"
)
