"""The fleet wire protocol: one msgspec msgpack frame per message, tagged by ``type``.

A worker talks to the engine over a DEALER socket; the engine's ROUTER prefixes the worker's
routing identity, so the engine reads ``[identity, frame]`` and each side writes exactly one frame
per message. Messages are frozen, gc-free msgspec Structs; the ``type`` tag names the message.

Decoding is strict: bytes that are not msgpack, an unknown ``type``, or a missing or ill-typed
field raise :class:`FrameError` with msgspec's description of what and where (I10). The engine
answers such a frame with ``ProtocolError(code="bad_frame")`` and goes on serving other workers.

Every number and text a worker sends is bounded here, at the boundary, because a peer is not
trusted to be sane: a ``retry_after_secs`` of ``inf`` or a ``Credit(n=2**63)`` would otherwise
travel into the scheduler and the journal and break a run there. Whole frames are bounded by the
broker's ``ZMQ_MAXMSGSIZE`` (``Welcome.max_message_bytes`` tells the worker the limit).

Example::

    frame = encode(Hello(protocol=PROTOCOL_VERSION, worker_id="w1", queues=["default"],
                         capacity=8, tools=["add"], pid=1234, host="box"))
    msg = decode_worker_message(frame)   # -> Hello(...)
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from tether.errors import MAX_RETRY_AFTER_SECS as MAX_RETRY_AFTER_SECS  # part of the wire's bounds
from tether.errors import TetherError

#: Bumped on any change a peer of the previous version would misread.
PROTOCOL_VERSION: Final = 1

#: Ids and names (worker, work item, queue, tool, host): far above any real one.
MAX_NAME_CHARS: Final = 256
#: Queues or tools one worker may name.
MAX_NAMES: Final = 1024
#: Slots one worker may announce (Hello.capacity) or give back in one Credit.
MAX_CAPACITY: Final = 10_000
#: Leases one Heartbeat may list (a worker back from an engine restart may hold more than its
#: capacity for a while, never this many).
MAX_HEARTBEAT_LEASES: Final = 100_000
#: Fences, pids: what SQLite's signed 64-bit integers hold.
MAX_INT64: Final = 2**63 - 1
#: Longest duration a Result may report (a year in milliseconds).
MAX_DURATION_MS: Final = 366 * 24 * 3600 * 1000
#: Longest work item id the wire carries (see WorkItemId).
MAX_WORK_ITEM_ID_CHARS: Final = 1024
#: An error message; the worker cuts longer ones (tracebacks are bounded further, to 4 KiB).
MAX_ERROR_CHARS: Final = 16_384
#: Largest frame the engine reads by default (``ZMQ_MAXMSGSIZE``): a Result's output included.
DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024

NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Fence = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]
#: ``execution/node/dispatch``: a client's execution id (128), a node id (MAX_NODE_ID_CHARS in
#: tether.ir.validation) and a dispatch number fit well within it.
WorkItemId = Annotated[str, msgspec.Meta(max_length=MAX_WORK_ITEM_ID_CHARS)]
WorkerId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
Names = Annotated[list[Name], msgspec.Meta(max_length=MAX_NAMES)]
Slots = Annotated[int, msgspec.Meta(ge=1, le=MAX_CAPACITY)]
ErrorText = Annotated[str, msgspec.Meta(max_length=MAX_ERROR_CHARS)]
ResultCredit = Annotated[int, msgspec.Meta(ge=0, le=1)]
#: Messages one Batch may carry (a sender starts another Batch past it).
MAX_BATCH_FRAMES: Final = 4096


class FrameError(TetherError, ValueError):
    """A frame that is not a valid message of the expected direction; says what and where."""


class _Message(msgspec.Struct, frozen=True, gc=False, tag_field="type", omit_defaults=True):
    """Base of every wire message (not sent itself)."""


class LeaseRef(msgspec.Struct, frozen=True, gc=False):
    """A lease a worker holds: the work item and the fence it was granted with (I5)."""

    work_item_id: WorkItemId
    fence: Fence


class ToolAnnouncement(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """A tool a worker serves, as the engine needs it to bind the tool's arguments without
    importing its module (see :mod:`tether.fleet.tool_announcements`)."""

    name: WorkerId  # a non-empty name
    params: Names = []
    required: Names = []
    accepts_kwargs: bool = False
    #: The JSON schema of its parameters (shown by the engine, not enforced).
    schema: dict[str, Any] = {}


# --- worker -> engine -------------------------------------------------------------------------


class Hello(_Message, frozen=True, tag="hello"):
    """First message on a connection: who the worker is and what it can run."""

    protocol: int
    worker_id: WorkerId
    queues: Names
    capacity: Slots
    tools: Names
    pid: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
    host: Name
    #: Which life of the worker process this is (random per process). With it, ``leases``
    #: is the worker's claim: the leases it runs, or finished without an Ack yet; any other
    #: lease the engine holds under ``worker_id`` was a predecessor's and is reclaimed at once.
    #: Without it (an older worker) every lease held under the id stays the worker's.
    #: (Added without a version change: an older engine ignores both.)
    incarnation: Name = ""
    leases: Annotated[list[LeaseRef], msgspec.Meta(max_length=MAX_HEARTBEAT_LEASES)] = []
    #: The parameters of the tools it serves, so an engine that lacks a tool's module binds
    #: its arguments by them. (Added without a version change: an older engine ignores it.)
    announced: Annotated[list[ToolAnnouncement], msgspec.Meta(max_length=MAX_NAMES)] = []
    #: The worker reads :class:`Batch` frames: the engine may send it several messages in one.
    #: (Added without a version change: an older engine ignores it and sends one per frame.)
    batches: bool = False


class Credit(_Message, frozen=True, tag="credit"):
    """The worker has ``n`` more free slots (beyond what Hello or earlier Credits announced)."""

    n: Slots


class Heartbeat(_Message, frozen=True, tag="heartbeat"):
    """Liveness plus the leases the worker still runs; the engine answers HeartbeatAck."""

    leases: Annotated[list[LeaseRef], msgspec.Meta(max_length=MAX_HEARTBEAT_LEASES)] = []


class Result(_Message, frozen=True, tag="result"):
    """Outcome of a granted work item, fenced; the engine answers Ack."""

    work_item_id: WorkItemId
    fence: Fence
    ok: bool
    output: Any = None
    error: ErrorText = ""
    error_type: Name = ""
    retryable: bool = True
    duration_ms: Annotated[int, msgspec.Meta(ge=0, le=MAX_DURATION_MS)] = 0
    #: A tool that raised: its traceback, bounded by the worker. Omitted when empty, and an
    #: older engine ignores the field: no protocol version change.
    traceback: ErrorText = ""
    #: 1: the slot this lease held is free, as if ``Credit(n=1)`` followed (one frame less per
    #: step). Sent only to an engine whose Welcome says ``result_credits`` (an older one would
    #: ignore it and lose the slot); a Result re-sent after a reconnect carries 0.
    credit: ResultCredit = 0


class RateLimited(_Message, frozen=True, tag="rate_limited"):
    """The tool's provider said 429: park the item until ``retry_after_secs`` (no attempt spent)."""

    work_item_id: WorkItemId
    fence: Fence
    #: Finite, 0 to MAX_RETRY_AFTER_SECS: NaN and inf are refused (the worker clamps).
    retry_after_secs: Annotated[float, msgspec.Meta(ge=0, le=MAX_RETRY_AFTER_SECS)]
    error: ErrorText = ""
    #: As ``Result.credit``.
    credit: ResultCredit = 0


class Bye(_Message, frozen=True, tag="bye"):
    """The worker is leaving on purpose (drained or shutting down)."""

    reason: Annotated[str, msgspec.Meta(max_length=MAX_ERROR_CHARS)] = ""


# --- engine -> worker -------------------------------------------------------------------------


class Welcome(_Message, frozen=True, tag="welcome"):
    """Answer to Hello: the engine's identity and the liveness timings the worker must keep."""

    protocol: int
    engine_id: str
    heartbeat_interval_ms: Positive
    lease_ttl_ms: Positive
    #: The largest frame the engine reads; a larger one closes the connection. An engine that
    #: does not send it reads the default. (Added without a version change: older peers
    #: ignore it.)
    max_message_bytes: Positive = DEFAULT_MAX_MESSAGE_BYTES
    #: This life of the engine (random per start; ``engine_id`` is often the same across
    #: restarts). Every HeartbeatAck and ProtocolError names it too, so a worker learns of a
    #: new life from any answer. Empty from an older engine.
    incarnation: str = ""
    #: The engine counts ``Result.credit`` (and ``RateLimited.credit``): the worker frees a
    #: reported lease's slot in its Result instead of a Credit after it. False from an older
    #: engine. (Added without a version change: each side falls back to Credit messages.)
    result_credits: bool = False
    #: The engine reads :class:`Batch` frames from this worker. False from an older engine.
    #: (Added without a version change: an older worker sends one message per frame.)
    batches: bool = False


class Grant(_Message, frozen=True, tag="grant"):
    """A lease on one work item: run ``tool`` on ``input`` and report with the same ``fence``."""

    work_item_id: str
    fence: NonNegative
    execution_id: str
    node_id: str
    attempt: NonNegative
    dispatch: NonNegative
    tool: str
    input: dict[str, Any]
    timeout_secs: float | None = None
    deadline_ms: int | None = None
    #: The W3C trace context of the step's attempt span (tether.telemetry.trace_ids): a
    #: worker that traces runs the step in a span inside it. Optional: older engines omit it.
    traceparent: str | None = None


class Cancel(_Message, frozen=True, tag="cancel"):
    """Stop running this lease (execution cancelled, or the lease was reclaimed)."""

    work_item_id: str
    fence: NonNegative
    reason: str


class Ack(_Message, frozen=True, tag="ack"):
    """Answer to Result/RateLimited: accepted, or refused (stale fence, unknown item) with why."""

    work_item_id: str
    fence: NonNegative
    accepted: bool
    reason: str = ""


class Batch(_Message, frozen=True, tag="batch"):
    """Several messages in one frame, each as its own encoding, in the order they were sent:
    what one event-loop turn had for one peer goes out in one ZeroMQ message (one send and one
    receive instead of one per message; ZeroMQ wakes its I/O thread once). Either direction,
    only to a peer that said it reads them (``Hello.batches``, ``Welcome.batches``); never
    nested, never a Hello or Welcome inside."""

    frames: Annotated[list[bytes], msgspec.Meta(max_length=MAX_BATCH_FRAMES)]


class HeartbeatAck(_Message, frozen=True, tag="heartbeat_ack"):
    """Answer to every Heartbeat: leases the engine no longer recognises (the worker must stop
    them), and which engine life answered (a worker welcomed by another says Hello again)."""

    expired: list[LeaseRef] = []
    incarnation: str = ""


class ProtocolError(_Message, frozen=True, tag="protocol_error"):
    """The engine refused a frame; ``code`` is one of the ``ERR_*`` constants below."""

    code: str
    message: str
    #: The engine life that refused it: ``hello_required`` from a new one means it restarted.
    incarnation: str = ""


#: The Hello carried another protocol version; the worker is not registered.
ERR_PROTOCOL_VERSION: Final = "protocol_version"
#: A message from a connection the engine does not know (never said Hello, or the engine
#: restarted, or forgot a silent worker): send Hello again.
ERR_HELLO_REQUIRED: Final = "hello_required"
#: The frame did not decode, or the message had the wrong number of frames.
ERR_BAD_FRAME: Final = "bad_frame"
#: The Hello's worker_id cannot be taken: the engine keeps it for its own workers (``local``,
#: ``http/...``), another live connection holds it, or this connection is already another worker.
ERR_WORKER_ID: Final = "worker_id"
#: The credential (CURVE key) that sent this Hello already has as many workers as it may.
ERR_WORKER_LIMIT: Final = "worker_limit"


def reserved_worker_id(worker_id: str) -> bool:
    """Ids of the engine's own workers (its in-process pool, HTTP workers): a ZeroMQ worker
    taking one would take over their credit and leases."""
    return worker_id == "local" or worker_id.startswith("http/")


WorkerMessage = Hello | Credit | Heartbeat | Result | RateLimited | Bye | Batch
EngineMessage = Welcome | Grant | Cancel | Ack | HeartbeatAck | ProtocolError | Batch

_encoder = msgspec.msgpack.Encoder()
_worker_decoder = msgspec.msgpack.Decoder(WorkerMessage)
_engine_decoder = msgspec.msgpack.Decoder(EngineMessage)


def encode(msg: WorkerMessage | EngineMessage) -> bytes:
    """One message as one msgpack frame.

    Example::

        sock.send(encode(Credit(n=1)))
    """
    return _encoder.encode(msg)


def decode_worker_message(frame: bytes | memoryview) -> WorkerMessage:
    """Decode a frame a worker sent; raises FrameError naming the problem.

    Example::

        decode_worker_message(encode(Bye()))        # -> Bye(reason='')
        decode_worker_message(b"\\xc1")              # FrameError: not a valid msgpack ...
    """
    try:
        msg: WorkerMessage = _worker_decoder.decode(frame)
    except msgspec.DecodeError as exc:
        raise FrameError(f"bad worker message: {exc}") from None
    return msg


def engine_messages_in(batch: Batch) -> tuple[list[EngineMessage], list[str]]:
    """The messages of an engine's Batch, in order, and what was wrong with those left out
    (a frame that does not decode; a Welcome or Batch, which never travel in one).

    Example::

        engine_messages_in(Batch(frames=[encode(ack), encode(grant)]))   # ([ack, grant], [])
    """
    messages: list[EngineMessage] = []
    problems: list[str] = []
    for frame in batch.frames:
        try:
            msg = decode_engine_message(frame)
        except FrameError as exc:
            problems.append(str(exc))
            continue
        if type(msg) is Batch or type(msg) is Welcome:
            problems.append(f"a batch may not carry a {type(msg).__name__}")
            continue
        messages.append(msg)
    return messages, problems


def decode_engine_message(frame: bytes | memoryview) -> EngineMessage:
    """Decode a frame the engine sent; raises FrameError naming the problem.

    Example::

        decode_engine_message(encode(Ack(work_item_id="x", fence=1, accepted=True)))
    """
    try:
        msg: EngineMessage = _engine_decoder.decode(frame)
    except msgspec.DecodeError as exc:
        raise FrameError(f"bad engine message: {exc}") from None
    return msg
