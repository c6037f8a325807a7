"""The parts of an execution's state that records also carry (a new segment is seeded with
them), kept apart so records and the fold can both import them.
"""

from __future__ import annotations

from typing import Any

import msgspec


class NodeRun(msgspec.Struct, frozen=True, gc=False):
    """The latest hand-out of one node: ``scheduled``, ``completed``, ``failed`` or ``retrying``."""

    status: str
    attempt: int
    dispatch: int
    not_before_ms: int | None = None
    input: dict[str, Any] = {}
    error: str | None = None
    #: Times a provider rate-limited this hand-out (each parked it without spending an attempt).
    parks: int = 0
    #: Lease losses (a dead or silent worker) of this node's retries so far that spent no
    #: attempt (see fold_routes.will_retry); carried from hand-out to hand-out.
    losses: int = 0
    #: The failure that made this node ``retrying`` was such a free lease loss: its retry is
    #: handed out at once, with no backoff (nothing was wrong with the step itself).
    free_retry: bool = False


class CallResult(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A finished durable call of a code-first body: its value (a step's output, a decision,
    a recorded value) or, when ``failed``, the error it failed with; and a digest of the
    step's input, which a replay's call must match (I8)."""

    failed: bool
    value: Any = None
    input_digest: int | None = None
    #: The seq of the record that finished it: a replay hands results to the body in this
    #: order, one at a time, as the live run did (see tether.runtime.code_first.calls).
    seq: int = 0


class Wait(msgspec.Struct, frozen=True, gc=False):
    """A node waiting for its timer, an external event, or a human decision."""

    dispatch: int
    since_ms: int
    fire_at_ms: int | None = None
    correlation_key: str | None = None
    approval: bool = False
    description: str = ""
    fired: bool = False


class AgentLoop(msgspec.Struct, frozen=True, gc=False):
    """An agent node's tool-calling loop between its calls: the transcript so far (the
    messages of its last model call, then that call's answer and the tool results since),
    the tool calls of that answer still to run, and what the loop has spent.

    Messages and calls are plain dicts in the providers' neutral shape (``role`` tagged:
    system, user, assistant with ``tool_calls``, tool with ``call_id``), as journaled.
    """

    started_at_ms: int
    messages: tuple[Any, ...] = ()
    pending: tuple[Any, ...] = ()
    iterations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: The text of the model's latest answer: what a budget breach leaves in state.
    best: Any = None
    #: Ids of pending tool calls a person approved (those needing approval run only then).
    approved: tuple[str, ...] = ()
