"""Structured fuzzing of a live engine's ZeroMQ port (I10, I5).

Random bytes rarely get past msgpack's first byte; these frames do. Hypothesis builds worker
messages that decode (Hello, Credit, Heartbeat, Result, RateLimited, Bye) with hostile values
(huge ints, infinities, unknown work items, reserved worker ids, other protocol versions), then
mutates some of them (a field of the wrong type, a field missing, an unknown ``type`` tag, a
truncated frame). A hand-made peer sends them to a Runtime's broker while a real fleet Worker is
connected; the engine must answer each the way the protocol says, send that peer nothing it did
not earn (no Grant, no accepted Ack), and go on running the real worker's steps.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
import zmq.asyncio
from fleet_helpers import RawPeer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from worker_engine import running_worker

from tether import Runtime, tool
from tether.fleet import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Credit,
    EngineMessage,
    FrameError,
    Heartbeat,
    HeartbeatAck,
    Hello,
    LeaseRef,
    ProtocolError,
    RateLimited,
    Result,
    Welcome,
    WorkerMessage,
    decode_worker_message,
    encode,
)
from tether.fleet.protocol import (
    ERR_BAD_FRAME,
    ERR_HELLO_REQUIRED,
    ERR_PROTOCOL_VERSION,
    ERR_WORKER_ID,
    reserved_worker_id,
)
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text

pytestmark = pytest.mark.anyio

U64 = 2**64 - 1
I64 = 2**63

# --- what the fuzzing peer sends ------------------------------------------------------------

anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-I64, U64)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
item_ids = st.text(max_size=24) | st.just("x" * 100_000)  # a long one, too
fences = st.integers(0, U64)

hellos = st.builds(
    Hello,
    protocol=st.just(PROTOCOL_VERSION) | st.integers(-I64, U64),
    # Never the real worker's id (a Hello would replace it) nor its queue (grants would come).
    worker_id=st.sampled_from(["local", "http/w"]) | st.text(max_size=16).map("fuzz-{}".format),
    queues=st.lists(st.text(max_size=8).map("fuzzq-{}".format), max_size=3),
    capacity=st.integers(1, U64),
    tools=st.lists(st.text(max_size=8), max_size=3),
    pid=st.integers(-I64, U64),
    host=st.text(max_size=16),
)
credits = st.builds(Credit, n=st.integers(1, U64))
heartbeats = st.builds(
    Heartbeat, leases=st.lists(st.builds(LeaseRef, item_ids, fences), max_size=3)
)
results = st.builds(
    Result,
    work_item_id=item_ids,
    fence=fences,
    ok=st.booleans(),
    output=anything,
    error=st.text(max_size=16),
    error_type=st.text(max_size=8),
    retryable=st.booleans(),
    duration_ms=st.integers(0, U64),
)
rate_limits = st.builds(
    RateLimited,
    work_item_id=item_ids,
    fence=fences,
    retry_after_secs=st.floats(min_value=0),  # up to infinity
    error=st.text(max_size=16),
)
byes = st.builds(Bye, reason=st.text(max_size=16))
# What a joined worker sends; with churn, also Hello and Bye (after which the broker may
# drop the scheduler's answers to what came before: those are only checked loosely).
steady: st.SearchStrategy[WorkerMessage] = st.one_of(results, rate_limits, heartbeats, credits)
churn: st.SearchStrategy[WorkerMessage] = st.one_of(steady, hellos, byes)
#: Every sequence starts by joining: the fuzzing peer is a worker the engine knows.
JOIN = encode(
    Hello(
        protocol=PROTOCOL_VERSION,
        worker_id="fuzz-peer",
        queues=["fuzzq"],
        capacity=1,
        tools=[],
        pid=1,
        host="fuzz",
    )
)


@st.composite
def frame(draw: st.DrawFn, messages: st.SearchStrategy[WorkerMessage]) -> bytes:
    """A message that decodes, or one mutated so that it may not."""
    msg = draw(messages)
    how = draw(st.sampled_from(["as is", "as is", "wrong type", "missing", "tag", "truncated"]))
    if how == "as is":
        return encode(msg)
    if how == "truncated":
        whole = encode(msg)
        return whole[: draw(st.integers(0, len(whole) - 1))]
    obj: dict[str, Any] = msgspec.to_builtins(msg)
    keys = sorted(set(obj) | set(msg.__struct_fields__))
    key = draw(st.sampled_from(keys))
    if how == "wrong type":
        obj[key] = draw(anything)
    elif how == "missing":
        obj.pop(key, None)
    else:
        obj["type"] = draw(anything)
    return msgspec.msgpack.encode(obj)


# --- what the engine must answer -------------------------------------------------------------


@dataclass
class Expected:
    """The engine's answers to the fuzzing peer, as the protocol says.

    The broker's own answers (ProtocolError, Welcome) are certain. The scheduler answers a
    Result, RateLimited or Heartbeat later; a Bye or new Hello after it may make the broker
    forget the connection first and drop that answer, so those answers are only possible.
    """

    certain: Counter[str] = field(default_factory=Counter)
    acks: Counter[tuple[str, int]] = field(default_factory=Counter)
    certain_acks: Counter[tuple[str, int]] = field(default_factory=Counter)
    expired: Counter[tuple[str, int]] = field(default_factory=Counter)


def expected_answers(sent: list[bytes]) -> Expected:
    out = Expected()
    known = False
    current = ""  # the worker id this connection joined as
    decoded: list[WorkerMessage | None] = []
    for frame in sent:
        try:
            decoded.append(decode_worker_message(frame))
        except FrameError:
            decoded.append(None)
    for i, msg in enumerate(decoded):
        if msg is None:
            out.certain[ERR_BAD_FRAME] += 1
        elif isinstance(msg, Hello):
            if msg.protocol != PROTOCOL_VERSION:
                out.certain[ERR_PROTOCOL_VERSION] += 1
            elif reserved_worker_id(msg.worker_id) or (known and msg.worker_id != current):
                out.certain[ERR_WORKER_ID] += 1  # reserved, or one worker id per connection
            else:
                out.certain["welcome"] += 1
                known, current = True, msg.worker_id
        elif not known:
            out.certain[ERR_HELLO_REQUIRED] += 1
        elif isinstance(msg, Bye):
            known = False
        elif isinstance(msg, Result | RateLimited):
            key = (msg.work_item_id, msg.fence)
            out.acks[key] += 1
            if not any(_forgets(later) for later in decoded[i + 1 :]):
                out.certain_acks[key] += 1
        elif isinstance(msg, Heartbeat):
            out.expired.update((ref.work_item_id, ref.fence) for ref in msg.leases)
    return out


def _forgets(msg: WorkerMessage | None) -> bool:
    """Whether the broker may forget the connection on this message (Bye, or re-Hello)."""
    return isinstance(msg, Bye) or (
        isinstance(msg, Hello)
        and msg.protocol == PROTOCOL_VERSION
        and not reserved_worker_id(msg.worker_id)
    )


def check_answers(got: list[EngineMessage], want: Expected) -> None:
    codes: Counter[str] = Counter()
    acks: Counter[tuple[str, int]] = Counter()
    expired: Counter[tuple[str, int]] = Counter()
    for msg in got:
        if isinstance(msg, ProtocolError):
            codes[msg.code] += 1
        elif isinstance(msg, Welcome):
            codes["welcome"] += 1
        elif isinstance(msg, Ack):
            assert not msg.accepted, msg  # no lease was ever granted to this peer
            assert "no live lease" in msg.reason, msg
            acks[(msg.work_item_id, msg.fence)] += 1
        elif isinstance(msg, HeartbeatAck):
            expired.update((ref.work_item_id, ref.fence) for ref in msg.expired)
        else:
            raise AssertionError(f"the fuzzing peer was sent {msg!r}")
    assert codes == want.certain
    assert want.certain_acks <= acks <= want.acks
    assert expired <= want.expired


# --- the engine and the real worker ----------------------------------------------------------


@tool
async def double(n: int) -> int:
    return n * 2


CHAIN = """
workflow: {id: fuzzed, version: "1", start: a, state_schema: {n: {type: integer}}}
nodes:
  a: {type: tool, tool: double, input: {n: $n}, output_key: n, next: b}
  b: {type: tool, tool: double, input: {n: $n}, output_key: n, next: end}
"""

#: The sentinel: three frames for one message, answered at once by the broker itself.
SENTINEL = (b"sentinel", b"of", b"three")


@contextmanager
def scratch_db() -> Iterator[str]:
    # Not pytest's tmp_path: Hypothesis runs many examples in one test call.
    with tempfile.TemporaryDirectory(prefix="tether-fuzz-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'runtime.db'}"


async def receive_through_sentinel(raw: RawPeer) -> list[EngineMessage]:
    got: list[EngineMessage] = []
    while True:
        msg = await raw.recv(timeout=10)
        if isinstance(msg, ProtocolError) and "got 3 frames" in msg.message:
            return got
        got.append(msg)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    sent=st.one_of(
        st.lists(frame(steady), min_size=1, max_size=25),
        st.lists(frame(churn), min_size=1, max_size=25),
    ).map(lambda frames: [JOIN, *frames])
)
async def test_structured_garbage_is_answered_and_a_real_worker_served_I10(
    sent: list[bytes],
) -> None:
    with scratch_db() as url:
        fleet = ZmqFleet("tcp://127.0.0.1:0")
        async with Runtime(url, tools=[double], transports=[fleet], max_concurrency=0) as rt:
            endpoint = fleet.endpoint
            wf = rt.register(compile_yaml_text(CHAIN, "fuzzed.yaml"))
            zctx = zmq.asyncio.Context()
            raw = RawPeer(zctx, endpoint)
            try:
                async with running_worker(endpoint, [double], worker_id="real"):
                    before = await rt.start(wf, {"n": 1})
                    for frame in sent:
                        await raw.send_frames(frame)
                    await raw.send_frames(*SENTINEL)
                    got = await receive_through_sentinel(raw)
                    # The broker has read every fuzzed frame. Runs started now go through the
                    # scheduler after everything it was told about them, then the second
                    # sentinel follows any answer the scheduler sent the fuzzing peer.
                    after = [await rt.start(wf, {"n": n}) for n in (2, 3)]
                    results = [await r.result(timeout=20) for r in (before, *after)]
                    assert results == [{"n": 4}, {"n": 8}, {"n": 12}]
                    await raw.send_frames(*SENTINEL)
                    got += await receive_through_sentinel(raw)
            finally:
                raw.close()
                zctx.destroy(linger=0)
            want = expected_answers(sent)
            event(f"scheduler answers certain: {bool(want.certain_acks)}")
            check_answers(got, want)
            assert rt.broken() == {}
