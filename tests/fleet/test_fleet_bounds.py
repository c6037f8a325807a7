"""Every number and text a worker sends is bounded at the wire (I10): out-of-range values are
refused by decoding, with where; an outcome a peer could still send (a non-finite retry-after
from any tool) cannot raise in a run's actor."""

from __future__ import annotations

import math

import msgspec
import pytest

from tether.fleet.protocol import (
    MAX_CAPACITY,
    MAX_NAME_CHARS,
    MAX_RETRY_AFTER_SECS,
    FrameError,
    decode_worker_message,
)
from tether.runtime.executor import NodeOutcome
from tether.runtime.outcome_records import outcome_record
from tether.runtime.records import NodeParked

HELLO = {"type": "hello", "protocol": 1, "worker_id": "w", "queues": [], "capacity": 1,
         "tools": [], "pid": 1, "host": "h"}  # fmt: skip
RESULT = {"type": "result", "work_item_id": "x", "fence": 1, "ok": True}


@pytest.mark.parametrize(
    ("msg", "where"),
    [
        ({**HELLO, "capacity": MAX_CAPACITY + 1}, "$.capacity"),
        ({**HELLO, "worker_id": "w" * (MAX_NAME_CHARS + 1)}, "$.worker_id"),
        ({**HELLO, "tools": ["t"] * 2000}, "$.tools"),
        ({"type": "credit", "n": 2**63}, "$.n"),
        ({**RESULT, "fence": 2**63}, "$.fence"),
        ({**RESULT, "duration_ms": 2**62}, "$.duration_ms"),
        ({**RESULT, "error": "e" * 20_000}, "$.error"),
        (
            {
                "type": "rate_limited",
                "work_item_id": "x",
                "fence": 1,
                "retry_after_secs": MAX_RETRY_AFTER_SECS * 2,
            },
            "$.retry_after_secs",
        ),
        (
            {"type": "rate_limited", "work_item_id": "x", "fence": 1, "retry_after_secs": math.inf},
            "$.retry_after_secs",
        ),
        (
            {"type": "rate_limited", "work_item_id": "x", "fence": 1, "retry_after_secs": math.nan},
            "$.retry_after_secs",
        ),
    ],
)
def test_out_of_range_fields_are_refused_naming_the_field_I10(
    msg: dict[str, object], where: str
) -> None:
    with pytest.raises(FrameError, match=rf"\{where}"):
        decode_worker_message(msgspec.msgpack.encode(msg))


@pytest.mark.parametrize("secs", [math.inf, math.nan, 1e300, -5.0])
def test_a_park_of_any_length_records_a_bounded_time_I10(secs: float) -> None:
    out = NodeOutcome(
        execution_id="exec_1", node_id="n", attempt=1, dispatch=1, work_item_id="w", fence=1,
        ok=False, error="429", retry_after_secs=secs,
    )  # fmt: skip
    record, settle = outcome_record(None, out, 1_000)  # type: ignore[arg-type]
    assert isinstance(record, NodeParked)
    assert 1_000 <= record.not_before_ms <= 1_000 + 7 * 24 * 3600 * 1000
    assert settle.not_before_ms == record.not_before_ms


def test_the_longest_work_item_id_a_workflow_can_make_crosses_the_wire() -> None:
    """execution/node/dispatch with a 128-character client id and the longest node id
    validation admits: a worker's Result for it decodes (found by review: the 256-character
    bound refused it, and the lease was reclaimed and rerun on every attempt)."""
    from tether.ir.validation import MAX_NODE_ID_CHARS

    wid = f"{'e' * 128}/{'n' * MAX_NODE_ID_CHARS}/{2**63 - 1}"
    frame = msgspec.msgpack.encode({**RESULT, "work_item_id": wid, "error_type": "E"})
    assert decode_worker_message(frame).work_item_id == wid  # type: ignore[union-attr]
