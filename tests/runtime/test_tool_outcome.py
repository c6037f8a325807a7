"""The one description of a tool call's outcome (I11): timeouts told from a tool's own
TimeoutError, arguments that do not fit told from a tool's own TypeError, tracebacks bounded
keeping the innermost frames, and node_failed records written before tracebacks were kept."""

from __future__ import annotations

import time

import anyio
import msgspec
import pytest

from tether.runtime.records import NodeFailed, decode_record
from tether.runtime.tool_outcome import ToolOutcome, run_tool
from tether.runtime.tools import ToolRegistry, tool
from tether.runtime.tracebacks import TRACEBACK_LIMIT, bounded

pytestmark = pytest.mark.anyio


@tool
async def own_timeout() -> None:
    raise TimeoutError("the provider's own deadline")


@tool
async def stall() -> None:
    await anyio.sleep(60)


@tool
async def own_type_error(n: int) -> None:
    raise TypeError(f"cannot use {n}")


def ping(depth: int) -> None:
    # Alternating with pong: Python folds only a frame repeated back to back.
    if depth == 0:
        raise RecursionError("innermost")
    pong(depth - 1)


def pong(depth: int) -> None:
    ping(depth)


@tool
async def deep() -> None:
    ping(200)


TOOLS = ToolRegistry([own_timeout, stall, own_type_error, deep])


async def run(ref: str, timeout_secs: float | None = None, **kwargs: object) -> ToolOutcome:
    return await run_tool(
        TOOLS,
        ref,
        kwargs,
        timeout_secs=timeout_secs,
        run_sync=anyio.to_thread.run_sync,
        monotonic=time.monotonic,
    )


async def test_our_deadline_is_a_timeout_and_a_tools_own_timeout_error_is_its_failure() -> None:
    ours = await run("stall", timeout_secs=0.05)
    assert (ours.error_type, ours.retryable, ours.traceback) == ("TimeoutError", True, "")
    assert ours.error == "tool 'stall' timed out after 0.05s"
    theirs = await run("own_timeout", timeout_secs=10)
    assert theirs.error == "TimeoutError: the provider's own deadline"
    assert "own_timeout" in theirs.traceback


async def test_a_cancellation_from_outside_is_not_a_timeout() -> None:
    # The tool's own deadline is far off, so only the outside cancel can end the call; code
    # that took any cancellation for its deadline would return a timeout outcome instead.
    with anyio.move_on_after(0.05) as scope:
        await run("stall", timeout_secs=60)
    assert scope.cancelled_caught


async def test_arguments_that_do_not_fit_fail_for_good_a_tools_type_error_is_retried() -> None:
    bad = await run("own_type_error", m=1)
    assert (bad.error_type, bad.retryable, bad.traceback) == ("BadToolInput", False, "")
    assert bad.error == "tool 'own_type_error' input: missing n; unexpected m (parameters: n)"
    own = await run("own_type_error", n=1)
    assert (own.error_type, own.retryable) == ("TypeError", True)
    assert own.error == "TypeError: cannot use 1"


async def test_a_deep_traceback_is_bounded_keeping_the_innermost_frames() -> None:
    out = await run("deep")
    assert len(out.traceback) <= TRACEBACK_LIMIT
    first, *rest = out.traceback.splitlines()
    assert first.startswith("[traceback truncated: first ") and "characters dropped]" in first
    assert rest[-1] == "RecursionError: innermost"
    assert "in ping" in rest[-3]
    assert rest[0].startswith("  File ")  # whole lines only after the note


def test_bounding_keeps_what_fits_and_is_idempotent() -> None:
    assert bounded("short\n") == "short\n"
    long = "".join(f"line {i}\n" for i in range(2000))
    cut = bounded(long)
    assert len(cut) <= TRACEBACK_LIMIT and cut.endswith("line 1999\n")
    assert bounded(cut) == cut
    one_line = "x" * (TRACEBACK_LIMIT * 2)
    assert len(bounded(one_line)) <= TRACEBACK_LIMIT


def test_a_node_failed_record_written_before_tracebacks_were_kept_still_decodes() -> None:
    old = {
        "type": "node_failed", "at_ms": 5, "node_id": "n", "dispatch": 1, "attempt": 1,
        "error": "boom", "error_type": "ValueError", "retryable": True, "duration_ms": 2,
    }  # fmt: skip
    record = decode_record("node_failed", msgspec.msgpack.encode(old))
    assert isinstance(record, NodeFailed) and record.traceback == ""
    assert record.error == "boom"
