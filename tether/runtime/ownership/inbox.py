"""Signals for a run owned by another engine, through the database's inbox table.

A cancel, event, approval or continue-as-new sent to engine A for a run that engine B owns is
posted as a row; B polls its inbox (the rows of the executions it owns), asks the run's actor
exactly as for a local signal, and writes the answer (the state after it, or the refusal)
into the row; A polls the row for it and answers its caller as if the run were local.

Why a polled table rather than LISTEN/NOTIFY: the message must survive B dying before it
answers (the row stays; whoever claims the run answers it), it needs no connection held
open in LISTEN mode per engine (it works through a transaction-mode pooler such as
pgbouncer), and a 100 ms poll of an indexed, usually empty set costs the database next to
nothing. A signal then takes one poll period longer on the other engine than on the owner.

Example::

    body = encode_signal(Approve("approved", "alice"))
    message = decode_signal(body)          # Approve("approved", "alice")
"""

from __future__ import annotations

from typing import Any

import msgspec

from tether import errors
from tether.runtime.execution import CancelExecution
from tether.runtime.signals import Approve, ContinueAsNew, SendEvent
from tether.runtime.snapshots import decode_state, encode_state
from tether.runtime.state import ExecutionState

Signal = CancelExecution | SendEvent | Approve | ContinueAsNew
_KINDS: dict[str, type[Signal]] = {
    "cancel": CancelExecution,
    "event": SendEvent,
    "approve": Approve,
    "continue_as_new": ContinueAsNew,
}
_NAMES = {kind: name for name, kind in _KINDS.items()}


class ForwardedFailure(errors.TetherError):
    """The owner refused a forwarded signal with an error this engine cannot rebuild."""


def is_signal(message: object) -> bool:
    return type(message) in _NAMES


def encode_signal(message: Signal) -> bytes:
    return msgspec.msgpack.encode([_NAMES[type(message)], msgspec.to_builtins(message)])


def decode_signal(body: bytes) -> Signal:
    """The signal in ``body``; ValueError naming what is wrong with a malformed one."""
    try:
        name, fields = msgspec.msgpack.decode(body)
        return msgspec.convert(fields, _KINDS[name])
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed inbox message: {exc}") from None


def encode_answer(answered: bool, result: object) -> bytes:
    """What the owner's actor answered: ``(False, None)`` when no actor took the signal."""
    if isinstance(result, ExecutionState):
        return msgspec.msgpack.encode(["state", answered, encode_state(result)])
    return msgspec.msgpack.encode(["value", answered, result])


def encode_refusal(exc: BaseException) -> bytes:
    return msgspec.msgpack.encode(["error", type(exc).__name__, str(exc)])


def decode_answer(body: bytes) -> tuple[bool, object]:
    """``(answered, result)``, or the owner's refusal raised again (same class when it is one
    of :mod:`tether.errors`)."""
    kind, first, second = msgspec.msgpack.decode(body)
    if kind == "state":
        return bool(first), decode_state(second)
    if kind == "value":
        return bool(first), second
    raise _rebuilt(str(first), str(second))


def _rebuilt(name: str, message: str) -> BaseException:
    cls: Any = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.TetherError)):
        return ForwardedFailure(f"{name}: {message}")
    # Its own __init__ takes fields; the message is all that travelled.
    exc: BaseException = cls.__new__(cls)
    exc.args = (message,)
    return exc
