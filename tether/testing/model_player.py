"""The ``fake_model`` fixture: one fake provider server for a whole test, whose script can be
replaced between runs (hypothesis draws a new one for each example) without restarting it.

Example::

    with ModelPlayer() as model:
        model.play([FakeReply(tool_calls=(FakeToolCall("search", {"q": "x"}),))])
        ...                                     # run an agent with AgentKinds(env=model.env())
        model.play([FakeReply("hi")], then=None)  # no final answer after the script: a 500
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from types import TracebackType

from tether.testing.fake_models import FakeFailure, FakeModelServer, FakeReply, LoggedRequest
from tether.testing.fake_models.server import Scripted

#: What the model answers once a played script is used up: a final answer, so an agent
#: whose drawn answers kept calling tools still ends.
FINAL_ANSWER = FakeReply("Done.", input_tokens=50, output_tokens=2)


class ModelPlayer:
    """A :class:`FakeModelServer` answering from a script that :meth:`play` replaces.

    ``then`` (by default :data:`FINAL_ANSWER`) answers every request after the script;
    ``then=None`` makes such a request a 500 and a problem, as the plain server does.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Scripted] = deque()
        self._then: Scripted | None = FINAL_ANSWER
        self._served_from = 0  # requests before the current script (not this run's)
        self.server = FakeModelServer(self._answer)

    def __enter__(self) -> ModelPlayer:
        self.server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.__exit__(exc_type, exc, tb)

    def play(self, answers: Iterable[Scripted], then: Scripted | None = FINAL_ANSWER) -> None:
        """Answer the next requests with ``answers`` in order, then with ``then``."""
        with self._lock:
            self._script = deque(answers)
            self._then = then
            self._served_from = len(self.server.requests)

    def push(self, *answers: Scripted) -> None:
        """Queue more answers after those still to come."""
        with self._lock:
            self._script.extend(answers)

    def env(self, key: str = "test-key") -> dict[str, str]:
        """Environment that points every provider here (see ``FakeModelServer.env``)."""
        return self.server.env(key)

    @property
    def requests(self) -> list[LoggedRequest]:
        """The requests since the last :meth:`play`."""
        with self._lock:
            since = self._served_from
        return self.server.requests[since:]

    def _answer(self, request: LoggedRequest) -> Scripted:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if self._then is not None:
                return self._then
        return FakeFailure(500, "the played script has no answer left")
