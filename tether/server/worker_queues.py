"""Which queues HTTP workers may claim (I14: a step's input goes only to a peer that needs it).

An HTTP worker names the queues it wants (``queue_types``); it is handed only the remote-only
ones among them: queues holding python_fn steps this engine has no function for (what
``jamjet worker`` serves), which neither the in-process pool nor a ZeroMQ worker runs. The
queues of the engine's own tools are never handed out, so a tool step's input (an API key, a
customer's record) never reaches an HTTP worker, nor can one commit a tool's output.
``TETHER_HTTP_WORKER_QUEUES`` narrows this further to a named list; asking for a queue outside
it, or for the engine's default tool queue, is refused (403) with the reason. A worker that
calls with a named token (``TETHER_TOKENS_FILE``) claims only the queues its ``queue:NAME``
roles name: credentials scoped to queues.

The remote-only queues are learned as workflows load, so a queue a worker asks for may become
claimable later (a ``jamjet worker`` started before its workflow is registered): until then
its claims find nothing.

Example::

    queues = HttpWorkerQueues(services.remote_queues, configured=frozenset({"general"}))
    queues.claimable(["general", "gpu"])   # raises QueueNotAllowed for 'gpu'
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import Final

from tether.errors import TetherError
from tether.runtime.work import DEFAULT_QUEUE


class QueueNotAllowed(TetherError, PermissionError):
    """A claim for a queue HTTP workers may not take (403, with the reason)."""


#: A named token's user and the queues its ``queue:NAME`` roles let it claim.
Credential = tuple[str, frozenset[str]]
#: The role prefix that scopes a named token to a queue.
QUEUE_ROLE: Final = "queue:"


def queues_of_caller(user_id: str, roles: Iterable[str]) -> Credential:
    """A named token claims only the queues its roles name (``queue:general``); the shared
    ``TETHER_TOKEN`` names nobody and is scoped engine-wide only."""
    return user_id, frozenset(r[len(QUEUE_ROLE) :] for r in roles if r.startswith(QUEUE_ROLE))


class HttpWorkerQueues:
    def __init__(self, remote: Set[str], *, configured: frozenset[str] | None = None) -> None:
        #: A live view: the runtime adds to it as workflows load.
        self._remote = remote
        self._configured = configured

    def claimable(
        self, requested: Iterable[str], credential: Credential | None = None
    ) -> frozenset[str]:
        """The queues of ``requested`` an HTTP worker may be handed now; raises
        QueueNotAllowed for one it may never be handed (by this engine, or with the named
        token it called with: see :func:`queues_of_caller`)."""
        wanted = frozenset(requested)
        if credential is not None:
            user, allowed = credential
            refused = sorted(wanted - allowed)
            if refused:
                granted = ", ".join(sorted(allowed)) or "none"
                raise QueueNotAllowed(
                    f"the token of {user!r} may claim queues {granted}, not {', '.join(refused)}"
                    f" (give it a role queue:NAME per queue in TETHER_TOKENS_FILE)"
                )
        for queue in sorted(wanted):
            if queue == DEFAULT_QUEUE:
                raise QueueNotAllowed(
                    f"queue {queue!r} holds the steps of this engine's own tools: HTTP workers "
                    "never claim it (they serve the queues of steps the engine has no "
                    "function for, 'general' by default)"
                )
            if self._configured is not None and queue not in self._configured:
                listed = ", ".join(sorted(self._configured)) or "none"
                raise QueueNotAllowed(
                    f"queue {queue!r} is not one HTTP workers may claim here "
                    f"(TETHER_HTTP_WORKER_QUEUES: {listed})"
                )
        return frozenset(q for q in wanted if q in self._remote)
