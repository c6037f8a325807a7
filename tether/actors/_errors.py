"""The exceptions the actor kernel raises to callers."""

from __future__ import annotations


class ActorStopped(Exception):
    """The actor is stopped (or stopping): it takes no new messages, and a pending ask was dropped.

    Example::

        try:
            await ref.tell("hello")
        except ActorStopped:
            ...  # the actor is gone; look it up again or give up
    """


class MailboxFull(Exception):
    """``tell_nowait`` found the bounded mailbox at capacity; ``tell`` would have waited."""


class AskTimeout(TimeoutError):
    """``ask`` got no answer within its timeout (real time, see :meth:`ActorRef.ask`)."""
