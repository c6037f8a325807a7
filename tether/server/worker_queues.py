"""Which queues HTTP workers may claim (I14: a step's input goes only to a peer that needs it).

An HTTP worker names the queues it wants (``queue_types``); it is handed only the remote-only
ones among them: queues holding python_fn steps this engine has no function for (what
``jamjet worker`` serves), which neither the in-process pool nor a ZeroMQ worker runs. The
queues of the engine's own tools are never handed out, so a tool step's input (an API key, a
customer's record) never reaches an HTTP worker, nor can one commit a tool's output.
``TETHER_HTTP_WORKER_QUEUES`` narrows this further to a named list; asking for a queue outside
it, or for the engine's default tool queue, is refused (403) with the reason.

The remote-only queues are learned as workflows load, so a queue a worker asks for may become
claimable later (a ``jamjet worker`` started before its workflow is registered): until then
its claims find nothing.

Example::

    queues = HttpWorkerQueues(services.remote_queues, configured=frozenset({"general"}))
    queues.claimable(["general", "gpu"])   # raises QueueNotAllowed for 'gpu'
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from tether.errors import TetherError
from tether.runtime.work import DEFAULT_QUEUE


class QueueNotAllowed(TetherError, PermissionError):
    """A claim for a queue HTTP workers may not take (403, with the reason)."""


class HttpWorkerQueues:
    def __init__(self, remote: Set[str], *, configured: frozenset[str] | None = None) -> None:
        #: A live view: the runtime adds to it as workflows load.
        self._remote = remote
        self._configured = configured

    def claimable(self, requested: Iterable[str]) -> frozenset[str]:
        """The queues of ``requested`` an HTTP worker may be handed now; raises
        QueueNotAllowed for one it may never be handed."""
        wanted = frozenset(requested)
        for queue in sorted(wanted):
            if queue == DEFAULT_QUEUE:
                raise QueueNotAllowed(
                    f"queue {queue!r} holds the steps of this engine's own tools: HTTP workers "
                    "never claim it (they serve the queues of steps the engine has no "
                    "function for, 'general' by default)"
                )
            if self._configured is not None and queue not in self._configured:
                allowed = ", ".join(sorted(self._configured)) or "none"
                raise QueueNotAllowed(
                    f"queue {queue!r} is not one HTTP workers may claim here "
                    f"(TETHER_HTTP_WORKER_QUEUES: {allowed})"
                )
        return frozenset(q for q in wanted if q in self._remote)
