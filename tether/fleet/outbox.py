"""Messages for one peer held until the end of the event loop's turn, then sent as few frames.

A step through the fleet sends its worker an Ack and, often, the next Grant; at fifty steps in
flight an engine sends dozens of messages per loop turn. One ZeroMQ send of a message costs the
engine ~10 us in place (two frames through pyzmq, and a wake-up of ZeroMQ's I/O thread), more
than encoding it: a :class:`~tether.fleet.protocol.Batch` of what a turn had for one peer costs
one send. Only a peer that reads Batch frames gets them (``Hello.batches``); the order of the
messages to one peer is kept.

Example::

    outbox = Outbox()
    outbox.add(identity, encode(ack))
    outbox.add(identity, encode(grant))
    for identity, frames in outbox.take():
        for wire in wire_frames(frames):   # one Batch frame here
            send(identity, wire)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from tether.fleet.protocol import MAX_BATCH_FRAMES, Batch, encode

__all__ = ["MAX_BATCH_BYTES", "Outbox", "wire_frames"]

#: Bytes one Batch frame takes at most; a message as large goes in a frame of its own.
MAX_BATCH_BYTES: Final = 1 << 20
#: What a Batch adds around its messages: the envelope, and a length per message.
_ENVELOPE_BYTES: Final = 32
_PER_FRAME_BYTES: Final = 5


class Outbox:
    """Encoded messages by peer identity, in the order added."""

    __slots__ = ("_frames",)

    def __init__(self) -> None:
        self._frames: dict[bytes, list[bytes]] = {}

    def __bool__(self) -> bool:
        return bool(self._frames)

    def add(self, identity: bytes, frame: bytes) -> None:
        held = self._frames.get(identity)
        if held is None:
            self._frames[identity] = [frame]
        else:
            held.append(frame)

    def take(self) -> list[tuple[bytes, list[bytes]]]:
        """Everything held, by peer, and nothing held after."""
        out = list(self._frames.items())
        self._frames = {}
        return out

    def take_for(self, identity: bytes) -> list[bytes]:
        """What is held for one peer (to send before a message that must follow it)."""
        return self._frames.pop(identity, [])


def wire_frames(frames: list[bytes], max_bytes: int = MAX_BATCH_BYTES) -> Iterator[bytes]:
    """The frames to send for ``frames`` (each one message's encoding), in order: one as it
    is, several in Batches of at most ``MAX_BATCH_FRAMES`` messages and ``max_bytes`` bytes
    (the receiver's frame limit, or less); a message that would not fit goes alone."""
    group: list[bytes] = []
    size = _ENVELOPE_BYTES
    for frame in frames:
        grown = size + len(frame) + _PER_FRAME_BYTES
        if group and (grown > max_bytes or len(group) >= MAX_BATCH_FRAMES):
            yield _batch(group)
            group, grown = [], _ENVELOPE_BYTES + len(frame) + _PER_FRAME_BYTES
        group.append(frame)
        size = grown
    if group:
        yield _batch(group)


def _batch(group: list[bytes]) -> bytes:
    return group[0] if len(group) == 1 else encode(Batch(frames=group))
