"""Run one tool call under its timeout and describe what it came to: the one description (I11).

The in-process pool and ``tether worker`` processes both call :func:`run_tool`, so the same
outcome becomes the same ``node_completed``/``node_failed``/``node_parked`` record wherever the
step ran: the same error type, message, retryability and traceback. Only per-run facts (the
duration, who ran it) differ. :func:`run_tool` never raises for anything the tool does;
cancellation from outside (the item's execution was cancelled, its lease revoked) is the only
thing that escapes it.

How outcomes are described (``error_type``, retryable, ``error``):

* returned a value msgpack can encode: ok.
* the name is not a registered tool: ``UnknownTool``, no, which tools there are.
* the arguments do not fit the signature: ``BadToolInput``, no, missing / unexpected ones.
* raised ``RateLimited``: ``RateLimited``, parked (no attempt spent), the provider's message.
* raised ``NonRetryableError``: ``NonRetryableError``, no, its message.
* raised anything else: its class name, yes, ``"<Class>: <message>"``.
* ran past ``timeout_secs``: ``TimeoutError``, yes, ``"tool 'x' timed out after 2s"``.
* returned what msgpack cannot encode: ``UnserializableOutput``, no, what msgpack said.
* an input ``${secret:NAME}`` the ``secrets`` source has no value for: ``MissingSecret``, no,
  which secret (by name) is missing.

Secret references in the input are resolved here, where the tool runs, and only here; the
values are then scrubbed (replaced by their references) from the error text, traceback and
output of the outcome, so a key a provider echoes is neither journaled nor sent.

A tool that raised keeps its traceback (bounded, innermost frames kept:
:mod:`tether.runtime.tracebacks`).

Example::

    out = await run_tool(registry, "fetch", {"url": u}, timeout_secs=30.0,
                         run_sync=anyio.to_thread.run_sync, monotonic=time.monotonic)
    out.ok, out.error_type, out.retryable      # (False, "TimeoutError", True)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Final

import msgspec

from tether.errors import NonRetryableError, RateLimited
from tether.runtime.secrets import (
    ENV_PREFIX,
    MissingSecret,
    SecretSource,
    has_reference,
    resolved_input,
    scrub,
    scrub_value,
)
from tether.runtime.tools import Tool, ToolRegistry, UnknownTool
from tether.runtime.tracebacks import exception_traceback

__all__ = [
    "ERR_BAD_INPUT",
    "ERR_MISSING_SECRET",
    "ERR_RATE_LIMITED",
    "ERR_TIMEOUT",
    "ERR_UNKNOWN_TOOL",
    "ERR_UNSERIALIZABLE",
    "RunSync",
    "ToolOutcome",
    "run_tool",
    "timeout_error",
]

ERR_UNKNOWN_TOOL: Final = "UnknownTool"
ERR_BAD_INPUT: Final = "BadToolInput"
ERR_UNSERIALIZABLE: Final = "UnserializableOutput"
ERR_TIMEOUT: Final = "TimeoutError"
ERR_RATE_LIMITED: Final = "RateLimited"
ERR_MISSING_SECRET: Final = "MissingSecret"

#: Runs a synchronous call off the event loop (a worker thread), e.g. ``anyio.to_thread.run_sync``.
RunSync = Callable[[Callable[[], Any]], Awaitable[Any]]

_encoder = msgspec.msgpack.Encoder()


class ToolOutcome(msgspec.Struct, frozen=True, gc=False):
    """What one call of a tool came to, as the journal will hold it."""

    ok: bool
    output: Any = None
    error: str = ""
    error_type: str = ""
    retryable: bool = True
    #: Where a tool that raised failed (bounded); empty for every other outcome.
    traceback: str = ""
    #: Set when the tool was rate limited: park this long, spending no attempt.
    retry_after_secs: float | None = None
    duration_ms: int = 0


def timeout_error(tool: str, timeout_secs: float) -> str:
    """The error of a call stopped at its timeout (also the engine's, when a remote worker
    did not stop it in time)."""
    return f"tool {tool!r} timed out after {timeout_secs:g}s"


def run_tool(
    tools: ToolRegistry,
    ref: str,
    kwargs: Mapping[str, Any],
    *,
    timeout_secs: float | None,
    run_sync: RunSync,
    monotonic: Callable[[], float],
    secrets: SecretSource | None = None,
) -> Coroutine[Any, Any, ToolOutcome]:
    """Call the tool ``ref`` names with ``kwargs``, stopped after ``timeout_secs`` (None or 0:
    no limit), and describe the outcome. ``monotonic`` times the call; ``secrets`` gives the
    values of ``${secret:NAME}`` inputs (none: a reference fails the call).

    A plain function returning the coroutine to await: the common call (no secret, nothing
    to resolve or scrub) is ``_run_tool``'s own, one coroutine frame less on every step."""
    if not has_reference(kwargs):
        return _run_tool(tools, ref, kwargs, timeout_secs, run_sync, monotonic)
    return _run_tool_with_secrets(tools, ref, kwargs, timeout_secs, run_sync, monotonic, secrets)


async def _run_tool_with_secrets(
    tools: ToolRegistry,
    ref: str,
    kwargs: Mapping[str, Any],
    timeout_secs: float | None,
    run_sync: RunSync,
    monotonic: Callable[[], float],
    secrets: SecretSource | None,
) -> ToolOutcome:
    try:
        resolved, used = resolved_input(kwargs, secrets)
    except MissingSecret as exc:
        return ToolOutcome(
            ok=False,
            error=missing_secret_error(ref, exc.name),
            error_type=ERR_MISSING_SECRET,
            retryable=False,
        )
    out = await _run_tool(tools, ref, resolved, timeout_secs, run_sync, monotonic)
    if out.ok:  # only a call that used a secret gets here: the common step returned above
        return msgspec.structs.replace(out, output=scrub_value(out.output, used))
    return msgspec.structs.replace(
        out, error=scrub(out.error, used), traceback=scrub(out.traceback, used)
    )


def missing_secret_error(tool: str, name: str) -> str:
    """The error of a call whose input references a secret with no value where it runs (the
    name only: there is no value to leak, and the name tells the operator what to set)."""
    return (
        f"tool {tool!r} needs secret {name!r}, which is not set where it runs: set "
        f"{ENV_PREFIX}{name} there (or pass it in Runtime(secrets=...) for the in-process pool)"
    )


async def _run_tool(
    tools: ToolRegistry,
    ref: str,
    kwargs: Mapping[str, Any],
    timeout_secs: float | None,
    run_sync: RunSync,
    monotonic: Callable[[], float],
) -> ToolOutcome:
    started = monotonic()
    try:
        t = tools.resolve(ref)
    except UnknownTool as exc:
        return ToolOutcome(ok=False, error=str(exc), error_type=ERR_UNKNOWN_TOOL, retryable=False)
    limit = timeout_secs or 0.0
    deadline = _Deadline(limit) if limit > 0 else None
    expired = False
    try:
        try:
            if t.is_async:  # straight to the function: one coroutine layer less per step
                output = await t.fn(**kwargs)
            else:
                output = await t.call(kwargs, run_sync)
        finally:
            expired = deadline is not None and deadline.close()
    except asyncio.CancelledError:
        if not expired:
            raise  # cancelled from outside: the caller's to handle
        return ToolOutcome(
            ok=False,
            error=timeout_error(t.name, limit),
            error_type=ERR_TIMEOUT,
            duration_ms=_since(monotonic, started),
        )
    except Exception as exc:
        return _failed(t, kwargs, exc, limit if expired else None, _since(monotonic, started))
    duration_ms = _since(monotonic, started)
    try:
        # Checked here, where the tool ran: the journal (and a worker's Result frame) could
        # not hold it, and the same input would fail the same way on every retry.
        _encoder.encode(output)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        return ToolOutcome(
            ok=False,
            error=f"tool {t.name!r} returned a value msgpack cannot encode: {exc}",
            error_type=ERR_UNSERIALIZABLE,
            retryable=False,
            duration_ms=duration_ms,
        )
    return ToolOutcome(ok=True, output=output, duration_ms=duration_ms)


class _Deadline:
    """A timeout on the running task. ``loop.call_later`` and ``task.cancel`` by hand: half
    the cost of ``asyncio.timeout`` (an async context manager) on the pool's step path, where
    it is paid by every step that has a timeout."""

    __slots__ = ("_baseline", "_handle", "_task", "fired")

    def __init__(self, secs: float) -> None:
        task = asyncio.current_task()
        assert task is not None, "run_tool runs in an asyncio task"
        self._task = task
        self._baseline = task.cancelling()
        self.fired = False
        self._handle = asyncio.get_running_loop().call_later(secs, self._fire)

    def _fire(self) -> None:
        self.fired = True
        self._task.cancel()

    def close(self) -> bool:
        """Stop the timer. True when it fired and its cancellation was the only one: taken
        back here, so the call ends as a timeout. A cancellation from outside as well (the
        pool's, a revoked lease's) is left standing and wins."""
        self._handle.cancel()
        return self.fired and self._task.uncancel() <= self._baseline


def _failed(
    t: Tool, kwargs: Mapping[str, Any], exc: Exception, timed_out: float | None, duration_ms: int
) -> ToolOutcome:
    if timed_out is not None:  # it turned our cancellation into an error of its own
        error = timeout_error(t.name, timed_out)
        return ToolOutcome(ok=False, error=error, error_type=ERR_TIMEOUT, duration_ms=duration_ms)
    if isinstance(exc, RateLimited):
        return ToolOutcome(
            ok=False,
            error=exc.message,
            error_type=ERR_RATE_LIMITED,
            retry_after_secs=exc.retry_after,
            duration_ms=duration_ms,
        )
    if isinstance(exc, TypeError):
        # Arguments that do not fit the signature fail the call before the tool runs, and
        # retrying the same input can never succeed. Checked only now, on failure: the common
        # step pays nothing for it.
        problem = _input_problem(t, kwargs)
        if problem is not None:
            return ToolOutcome(
                ok=False,
                error=problem,
                error_type=ERR_BAD_INPUT,
                retryable=False,
                duration_ms=duration_ms,
            )
    return _raised(exc, duration_ms)


def _raised(exc: Exception, duration_ms: int) -> ToolOutcome:
    name = type(exc).__name__
    if isinstance(exc, NonRetryableError):
        error = str(exc) or name  # the tool's own verdict, worded for people: as it is
    else:
        text = str(exc)
        error = f"{name}: {text}" if text else name
    return ToolOutcome(
        ok=False,
        error=error,
        error_type=name,
        retryable=not isinstance(exc, NonRetryableError),
        # The first frame is run_tool's, the same for every failure: left out.
        traceback=exception_traceback(exc, skip_frames=1),
        duration_ms=duration_ms,
    )


def _input_problem(t: Tool, kwargs: Mapping[str, Any]) -> str | None:
    missing = sorted(t.required - kwargs.keys())
    unexpected = [] if t.accepts_kwargs else sorted(kwargs.keys() - set(t.params))
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    if not problems:
        return None
    params = ", ".join(t.params) or "none"
    return f"tool {t.name!r} input: {'; '.join(problems)} (parameters: {params})"


def _since(monotonic: Callable[[], float], started: float) -> int:
    return max(0, int((monotonic() - started) * 1000))
