"""The wire protocol: every message round trips; bad frames raise FrameError naming why (I10)."""

from __future__ import annotations

import contextlib

import msgspec
import pytest
from fleet_helpers import hello
from hypothesis import given
from hypothesis import strategies as st

from tether.fleet import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Cancel,
    Credit,
    EngineMessage,
    FrameError,
    Grant,
    Heartbeat,
    HeartbeatAck,
    LeaseRef,
    ProtocolError,
    RateLimited,
    Result,
    Welcome,
    WorkerMessage,
    decode_engine_message,
    decode_worker_message,
    encode,
)
from tether.fleet.protocol import ERR_BAD_FRAME, ERR_HELLO_REQUIRED, ERR_PROTOCOL_VERSION

WORKER_MESSAGES: list[WorkerMessage] = [
    hello("w1"),
    Credit(n=3),
    Heartbeat(leases=[LeaseRef(work_item_id="e/n/1", fence=7)]),
    Heartbeat(),
    Result(work_item_id="e/n/1", fence=7, ok=True, output={"a": [1, 2.5, None]}),
    Result(
        work_item_id="e/n/1",
        fence=7,
        ok=False,
        error="boom",
        error_type="ValueError",
        retryable=False,
        duration_ms=12,
    ),
    RateLimited(work_item_id="e/n/1", fence=7, retry_after_secs=1.5, error="429"),
    Bye(reason="draining"),
]

ENGINE_MESSAGES: list[EngineMessage] = [
    Welcome(protocol=PROTOCOL_VERSION, engine_id="eng", heartbeat_interval_ms=50, lease_ttl_ms=200),
    Grant(
        work_item_id="e/n/1",
        fence=7,
        execution_id="e",
        node_id="n",
        attempt=2,
        dispatch=1,
        tool="echo",
        input={"text": "hi"},
        timeout_secs=3.0,
        deadline_ms=1_700_000_000_000,
    ),
    Cancel(work_item_id="e/n/1", fence=7, reason="execution cancelled"),
    Ack(work_item_id="e/n/1", fence=7, accepted=False, reason="stale fence 7, current is 8"),
    HeartbeatAck(expired=[LeaseRef(work_item_id="e/n/1", fence=7)]),
    ProtocolError(code=ERR_HELLO_REQUIRED, message="send Hello first"),
]


@pytest.mark.parametrize("msg", WORKER_MESSAGES, ids=lambda m: type(m).__name__)
def test_worker_messages_round_trip(msg: WorkerMessage) -> None:
    assert decode_worker_message(encode(msg)) == msg


@pytest.mark.parametrize("msg", ENGINE_MESSAGES, ids=lambda m: type(m).__name__)
def test_engine_messages_round_trip(msg: EngineMessage) -> None:
    assert decode_engine_message(encode(msg)) == msg


def test_error_codes_are_distinct() -> None:
    assert len({ERR_BAD_FRAME, ERR_HELLO_REQUIRED, ERR_PROTOCOL_VERSION}) == 3


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        (b"\xc1", "malformed"),
        (b"", "truncated"),
        (msgspec.msgpack.encode([1, 2]), "Expected `object`"),
        (msgspec.msgpack.encode({"type": "nope"}), "'nope' - at `$.type`"),
        (msgspec.msgpack.encode({"n": 1}), "missing required field `type`"),
        (msgspec.msgpack.encode({"type": "credit"}), "missing required field `n`"),
        (msgspec.msgpack.encode({"type": "credit", "n": "x"}), "`$.n`"),
        (msgspec.msgpack.encode({"type": "credit", "n": 0}), ">= 1"),
        (msgspec.msgpack.encode({"type": "heartbeat", "leases": [{"fence": 1}]}), "work_item_id"),
        # An engine message sent the wrong way is as unknown as any other type.
        (encode(ENGINE_MESSAGES[0]), "'welcome' - at `$.type`"),
    ],
)
def test_bad_worker_frames_raise_frame_error_naming_the_problem_I10(
    frame: bytes, says: str
) -> None:
    with pytest.raises(FrameError, match="bad worker message") as info:
        decode_worker_message(frame)
    assert says in str(info.value)


def test_bad_engine_frame_raises_frame_error() -> None:
    with pytest.raises(FrameError, match=r"bad engine message: .*'credit'"):
        decode_engine_message(encode(Credit(n=1)))


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_frame_error_only_I10(frame: bytes) -> None:
    for decode in (decode_worker_message, decode_engine_message):
        with contextlib.suppress(FrameError):
            decode(frame)


def test_messages_are_frozen() -> None:
    msg = Credit(n=1)
    with pytest.raises(AttributeError):
        msg.n = 2  # type: ignore[misc]
