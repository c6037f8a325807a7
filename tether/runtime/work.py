"""What a durable work item carries, and which queue a node's work goes to.

A work item row (``execution/node/dispatch``) is created in the turn that journals its
``node_scheduled`` record (I4); its payload is a :class:`WorkSpec`, everything a worker needs to
run it, so the scheduler can grant it after a restart without reading any journal.

Example::

    spec = WorkSpec(tool="add_one", input={"n": 1}, timeout_secs=30.0)
    assert decode_spec(encode_spec(spec)) == spec
    queue_of(node)          # node.labels["queue"], or "python_tool"
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from tether.ir.types import Node

#: The queue of a node without a ``queue`` label (what ``tether worker`` serves by default).
DEFAULT_QUEUE: Final = "python_tool"


class WorkSpec(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """The payload of a work item row."""

    tool: str
    input: dict[str, Any] = {}
    timeout_secs: float | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(WorkSpec)


def encode_spec(spec: WorkSpec) -> bytes:
    return _encoder.encode(spec)


def decode_spec(payload: bytes) -> WorkSpec:
    """Raises msgspec.DecodeError for a payload that is not a WorkSpec."""
    return _decoder.decode(payload)


def queue_of(node: Node) -> str:
    """The queue a work node's items go to: its ``queue`` label, else :data:`DEFAULT_QUEUE`."""
    return node.labels.get("queue", DEFAULT_QUEUE)
