"""What a durable work item carries, and which queue a node's work goes to.

A work item row (``execution/node/dispatch``) is created in the turn that journals its
``node_scheduled`` record (I4); its payload is a :class:`WorkSpec`, everything a worker needs to
run it, so the scheduler can grant it after a restart without reading any journal.

Example::

    spec = WorkSpec(tool="add_one", input={"n": 1}, timeout_secs=30.0)
    assert decode_spec(encode_spec(spec)) == spec
    queue_of(node)          # node.labels["queue"], or "python_tool"
    queue_of(node, remote=True)   # a python_fn the engine cannot run: "general"
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from tether.ir.types import Node

#: The queue of a node without a ``queue`` label (what ``tether worker`` serves by default).
DEFAULT_QUEUE: Final = "python_tool"
#: The queue of a python_fn step whose function is not registered with the engine: what
#: ``jamjet worker`` consumes by default. The in-process pool never takes such a queue.
REMOTE_FN_QUEUE: Final = "general"


class WorkSpec(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """The payload of a work item row."""

    tool: str
    input: dict[str, Any] = {}
    timeout_secs: float | None = None
    #: A whole-state step (python_fn without output_key): its dict output is merged into
    #: state, so an HTTP worker's ``state_patch`` is the output that counts.
    merge: bool = False


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(WorkSpec)


def encode_spec(spec: WorkSpec) -> bytes:
    return _encoder.encode(spec)


def decode_spec(payload: bytes) -> WorkSpec:
    """Raises msgspec.DecodeError for a payload that is not a WorkSpec."""
    return _decoder.decode(payload)


def queue_of(node: Node, *, remote: bool = False) -> str:
    """The queue a work node's items go to: its ``queue`` label, else :data:`DEFAULT_QUEUE`,
    or :data:`REMOTE_FN_QUEUE` for a python_fn step this engine has no function for."""
    return node.labels.get("queue", REMOTE_FN_QUEUE if remote else DEFAULT_QUEUE)
