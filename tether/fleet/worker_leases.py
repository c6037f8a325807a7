"""One lease on a worker: run the granted tool and turn what happened into the message to send.

:func:`run_grant` never raises for anything the tool does: every outcome becomes a ``Result``
(ok or failed, retryable or not) or a ``RateLimited`` message. Only cancellation (the engine
revoked the lease, or the worker is shutting down) escapes it.

Example::

    limiter = anyio.CapacityLimiter(8)
    msg = await run_grant(grant, ToolRegistry([add_one]), limiter)
    await conn.send(msg)          # Result(work_item_id=..., fence=..., ok=True, output=2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import anyio
import msgspec

from tether.errors import NonRetryableError, RateLimited
from tether.fleet.protocol import Grant, Result
from tether.fleet.protocol import RateLimited as RateLimitedMessage
from tether.runtime.tools import Tool, ToolRegistry, UnknownTool

__all__ = ["Lease", "LeaseKey", "Outcome", "run_grant"]

#: A lease is one (work item, fence): the same item may come back with a higher fence.
LeaseKey = tuple[str, int]
Outcome = Result | RateLimitedMessage

ERR_UNKNOWN_TOOL: Final = "UnknownTool"
ERR_BAD_INPUT: Final = "BadToolInput"
ERR_UNSERIALIZABLE: Final = "UnserializableOutput"
ERR_TIMEOUT: Final = "TimeoutError"

_encoder = msgspec.msgpack.Encoder()


@dataclass(eq=False, slots=True)
class Lease:
    """A grant this worker holds: queued for a slot (``scope`` None) or running."""

    grant: Grant
    scope: anyio.CancelScope | None = None
    #: Set when the engine took the lease back (Cancel, expired): its outcome is not sent.
    revoked: bool = False
    key: LeaseKey = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.grant.work_item_id, self.grant.fence)


def failure(
    grant: Grant, error: str, error_type: str, *, retryable: bool, duration_ms: int = 0
) -> Result:
    """A failed Result for ``grant``."""
    return Result(
        work_item_id=grant.work_item_id,
        fence=grant.fence,
        ok=False,
        error=error,
        error_type=error_type,
        retryable=retryable,
        duration_ms=duration_ms,
    )


def _input_problem(t: Tool, kwargs: Mapping[str, Any]) -> str | None:
    # Checked before the call: a TypeError from a wrong signature would otherwise look like a
    # retryable tool failure, and retrying the same input can never succeed.
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


async def run_grant(
    grant: Grant,
    registry: ToolRegistry,
    limiter: anyio.CapacityLimiter,
) -> Outcome:
    """Run ``grant.tool`` on ``grant.input`` within ``grant.timeout_secs``; the message to send.

    Sync tools run in a thread taken from ``limiter``; on timeout or revocation the thread is
    abandoned (Python cannot stop it) and finishes on its own.

    Example::

        msg = await run_grant(grant, registry, anyio.CapacityLimiter(4))
    """
    started = anyio.current_time()

    def elapsed_ms() -> int:
        return max(0, int((anyio.current_time() - started) * 1000))

    try:
        t = registry.resolve(grant.tool)
    except UnknownTool as exc:
        return failure(grant, str(exc), ERR_UNKNOWN_TOOL, retryable=False)
    problem = _input_problem(t, grant.input)
    if problem is not None:
        return failure(grant, problem, ERR_BAD_INPUT, retryable=False)

    run_sync = partial(anyio.to_thread.run_sync, abandon_on_cancel=True, limiter=limiter)
    timeout = grant.timeout_secs
    try:
        # move_on_after, not fail_after: a TimeoutError the tool raises itself is its own
        # failure, not our deadline.
        with anyio.move_on_after(timeout if timeout is not None else float("inf")) as deadline:
            output = await t.call(grant.input, run_sync)
    except RateLimited as exc:
        return RateLimitedMessage(
            work_item_id=grant.work_item_id,
            fence=grant.fence,
            retry_after_secs=exc.retry_after,
            error=exc.message,
        )
    except Exception as exc:
        return failure(
            grant,
            str(exc) or type(exc).__name__,
            type(exc).__name__,
            retryable=not isinstance(exc, NonRetryableError),
            duration_ms=elapsed_ms(),
        )
    if deadline.cancelled_caught:
        return failure(
            grant,
            f"tool {t.name!r} timed out after {timeout:g}s",
            ERR_TIMEOUT,
            retryable=True,
            duration_ms=elapsed_ms(),
        )
    try:
        # Checked here, not at send time: a frame that cannot be encoded would otherwise kill
        # the send path, and the same input would fail the same way on every retry.
        _encoder.encode(output)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        return failure(
            grant,
            f"tool {t.name!r} returned a value that cannot be sent (msgpack): {exc}",
            ERR_UNSERIALIZABLE,
            retryable=False,
            duration_ms=elapsed_ms(),
        )
    return Result(
        work_item_id=grant.work_item_id,
        fence=grant.fence,
        ok=True,
        output=output,
        duration_ms=elapsed_ms(),
    )
