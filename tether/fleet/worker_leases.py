"""One lease on a worker: run the granted tool and turn what happened into the message to send.

:func:`run_grant` never raises for anything the tool does: every outcome becomes a ``Result``
(ok or failed, retryable or not) or a ``RateLimited`` message, described by
:func:`tether.runtime.tool_outcome.run_tool` exactly as the engine's in-process pool describes
it (I11). Only cancellation (the engine revoked the lease, or the worker is shutting down)
escapes it.

Example::

    limiter = anyio.CapacityLimiter(8)
    msg = await run_grant(grant, ToolRegistry([add_one]), limiter)
    await conn.send(msg)          # Result(work_item_id=..., fence=..., ok=True, output=2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import anyio
from msgspec.structs import replace

from tether.errors import MAX_RETRY_AFTER_SECS
from tether.fleet.protocol import (
    MAX_ERROR_CHARS,
    MAX_NAME_CHARS,
    Grant,
    Result,
    encode,
)
from tether.fleet.protocol import RateLimited as RateLimitedMessage
from tether.runtime.secrets import EnvSecrets, SecretSource
from tether.runtime.tool_outcome import run_tool
from tether.runtime.tools import ToolRegistry

__all__ = ["Lease", "LeaseKey", "Outcome", "fitting", "run_grant"]

#: A lease is one (work item, fence): the same item may come back with a higher fence.
LeaseKey = tuple[str, int]
Outcome = Result | RateLimitedMessage


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


async def run_grant(
    grant: Grant,
    registry: ToolRegistry,
    limiter: anyio.CapacityLimiter,
    secrets: SecretSource | None = None,
) -> Outcome:
    """Run ``grant.tool`` on ``grant.input`` within ``grant.timeout_secs``; the message to send.

    Sync tools run in a thread taken from ``limiter``; on timeout or revocation the thread is
    abandoned (Python cannot stop it) and finishes on its own. ``${secret:NAME}`` inputs take
    their values from ``secrets`` (default: this process's ``TETHER_SECRET_<NAME>``): the
    engine sends references only, and the outcome sent back is scrubbed of the values.

    Example::

        msg = await run_grant(grant, registry, anyio.CapacityLimiter(4))
    """
    run_sync = partial(anyio.to_thread.run_sync, abandon_on_cancel=True, limiter=limiter)
    out = await run_tool(
        registry,
        grant.tool,
        grant.input,
        timeout_secs=grant.timeout_secs,
        run_sync=run_sync,
        monotonic=anyio.current_time,
        secrets=secrets if secrets is not None else EnvSecrets(),
    )
    if out.retry_after_secs is not None:
        return RateLimitedMessage(
            work_item_id=grant.work_item_id,
            fence=grant.fence,
            retry_after_secs=_park_secs(out.retry_after_secs),
            error=out.error[:MAX_ERROR_CHARS],
        )
    return Result(
        work_item_id=grant.work_item_id,
        fence=grant.fence,
        ok=out.ok,
        output=out.output,
        error=out.error[:MAX_ERROR_CHARS],
        error_type=out.error_type[:MAX_NAME_CHARS],  # an exception class name may be long
        retryable=out.retryable,
        traceback=out.traceback[:MAX_ERROR_CHARS],
        duration_ms=out.duration_ms,
    )


def fitting(
    outcome: Outcome, tool: str, max_message_bytes: int, credit: int = 0
) -> tuple[Outcome, bytes]:
    """``outcome`` and its frame, or, when the frame would exceed the engine's limit (the
    engine would close the connection on it), a failure that says so and its frame: not
    retryable, the same output would come back. Encoded once: the frame is what is sent.
    ``credit``: the slot freed with it (``Result.credit``), in either.

    Example::

        msg, frame = fitting(await run_grant(grant, registry, limiter), grant.tool, 16 << 20)
    """
    if credit:
        outcome = replace(outcome, credit=credit)
    frame = encode(outcome)
    if len(frame) <= max_message_bytes:
        return outcome, frame
    too_large = Result(
        work_item_id=outcome.work_item_id,
        fence=outcome.fence,
        ok=False,
        error=(
            f"tool {tool!r} returned {len(frame)} bytes, more than the engine accepts in one "
            f"message ({max_message_bytes}): return a reference to large data instead"
        ),
        error_type="OutputTooLarge",
        retryable=False,
        duration_ms=outcome.duration_ms if isinstance(outcome, Result) else 0,
        credit=credit,
    )
    return too_large, encode(too_large)


def _park_secs(secs: float) -> float:
    # A tool's Retry-After may say anything; the engine refuses more than the cap.
    if math.isnan(secs):
        return MAX_RETRY_AFTER_SECS
    return min(max(secs, 0.0), MAX_RETRY_AFTER_SECS)
