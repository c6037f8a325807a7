"""A real HTTP server on 127.0.0.1 that answers like OpenAI, Azure OpenAI, Anthropic and Gemini.

It runs in a background thread (stdlib ``ThreadingHTTPServer``), so sync tests, async tests and
subprocesses all reach it the same way: by its URL.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from tether.testing.fake_models.script import FakeFailure, FakeReply, LoggedRequest
from tether.testing.fake_models.wire import (
    Route,
    error_body,
    key_header,
    messages_hash,
    reply_body,
    route,
)

__all__ = ["FakeModelServer", "Responder", "Scripted"]

Scripted = FakeReply | FakeFailure
#: Given each request (parsed), says how to answer it.
Responder = Callable[[LoggedRequest], Scripted]

#: What each provider says to a wrong key, and with which status (Gemini: 400, as it does).
_BAD_KEY: Final = {
    "openai": (401, "Incorrect API key provided. You can find your API key in your account."),
    "azure": (401, "Access denied due to invalid subscription key or wrong API endpoint."),
    "anthropic": (401, "invalid x-api-key"),
    "gemini": (400, "API key not valid. Please pass a valid API key."),
}
_AUTH_HEADERS: Final = frozenset({"authorization", "api-key", "x-api-key", "x-goog-api-key"})


class FakeModelServer:
    """A scripted model provider over real HTTP, for tests of anything that calls models.

    ``replies`` is a queue of :class:`FakeReply`/:class:`FakeFailure` answered in order (add
    more with :meth:`push`), or a function given each :class:`LoggedRequest` that returns one.
    ``api_key`` set: a request with another key gets that provider's bad-key error. A request
    with nothing left to answer gets a 500 and is listed in :attr:`problems`; leaving the
    ``with`` block then fails the test.

    ``keep_alive`` set: it speaks HTTP/1.1 and keeps each connection open for the client's
    next request (with Nagle's algorithm off, so an answer is not held back waiting for an
    ACK), as providers do: what a load test of many calls needs. By default each answer closes
    its connection (HTTP/1.0). Connections open when the server stops are served until their
    client closes them.

    Example::

        with FakeModelServer([FakeReply("4"), FakeFailure.rate_limited(3)], api_key="k") as srv:
            client = OpenAIClient(api_key="k", base_url=srv.openai_base_url)
            ...                                   # "4", then a ProviderRateLimited(3)
            assert srv.requests[0].model == "gpt-4o-mini"
            assert not srv.sent_twice()
    """

    def __init__(
        self,
        replies: Iterable[Scripted] | Responder = (),
        *,
        api_key: str | None = None,
        keep_alive: bool = False,
    ) -> None:
        self._responder = replies if callable(replies) else None
        self._queue: deque[Scripted] = deque(() if callable(replies) else replies)
        self._api_key = api_key
        self._keep_alive = keep_alive
        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._problems: list[str] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeModelServer:
        """Listen on an ephemeral port of 127.0.0.1 and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("the fake model server is already running")
        httpd = _Server(("127.0.0.1", 0), _handler(self, keep_alive=self._keep_alive))
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="fake-models", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None and self._problems:
            raise AssertionError("fake model server: " + "; ".join(self._problems))

    # -- where it is -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: Anthropic's, Gemini's and Azure's base URL."""
        if self._httpd is None:
            raise RuntimeError("the fake model server is not running: use it in a with block")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI base URL, with its ``/v1`` (as ``OPENAI_BASE_URL`` has it)."""
        return f"{self.url}/v1"

    def env(self, key: str = "test-key") -> dict[str, str]:
        """Environment variables that point every provider here with ``key``."""
        return {
            "OPENAI_API_KEY": key, "OPENAI_BASE_URL": self.openai_base_url,
            "ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": self.url,
            "GEMINI_API_KEY": key, "GEMINI_BASE_URL": self.url,
            "AZURE_OPENAI_API_KEY": key, "AZURE_OPENAI_ENDPOINT": self.url,
        }  # fmt: skip

    # -- script and log ----------------------------------------------------------------------

    def push(self, *answers: Scripted) -> None:
        """Queue more answers (after those already queued)."""
        with self._lock:
            self._queue.extend(answers)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._log)

    @property
    def problems(self) -> list[str]:
        """Requests the script had no answer for."""
        with self._lock:
            return list(self._problems)

    def sent_twice(self) -> list[str]:
        """Hashes of conversations sent more than once (a committed call sent again)."""
        seen: set[str] = set()
        twice: list[str] = []
        for r in self.requests:
            if r.messages_hash in seen and r.messages_hash not in twice:
                twice.append(r.messages_hash)
            seen.add(r.messages_hash)
        return twice

    # -- answering (on the server's threads) -------------------------------------------------

    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Out:
        url = urlsplit(target)
        where = route(url.path)
        if method != "POST" or where is None:
            return _Out(404, json.dumps({"error": {"message": f"no route {method} {url.path}"}}))
        query = parse_qs(url.query)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        model = where.model or (body.get("model", "") if isinstance(body, dict) else "")
        logged = self._log_request(where, url.path, model, body, headers)
        refusal = self._refusal(where, headers, query, body)
        if refusal is not None:
            return _Out(refusal.status, error_body(where.wire, refusal))
        answer = self._next(logged)
        if answer is None:
            return _Out(500, error_body(where.wire, FakeFailure(500, "no scripted answer left")))
        if answer.delay_secs > 0:
            time.sleep(answer.delay_secs)
        if isinstance(answer, FakeFailure):
            # Gemini says when to retry in its body (RetryInfo), not in a header.
            after = answer.retry_after if where.wire != "gemini" else None
            extra = {"retry-after": after} if after else {}
            return _Out(answer.status, error_body(where.wire, answer), extra)
        assert isinstance(body, dict)  # _refusal turned away every other body
        return _Out(200, reply_body(where.wire, answer, model, body, len(self._log)))

    def _log_request(
        self, where: Route, path: str, model: str, body: Any, headers: dict[str, str]
    ) -> LoggedRequest:
        body = body if isinstance(body, dict) else {}
        kept = {k: v for k, v in headers.items() if k not in _AUTH_HEADERS}
        logged = LoggedRequest(where.wire, path, model, body, messages_hash(where.wire, body), kept)
        with self._lock:
            self._log.append(logged)
        return logged

    def _refusal(
        self, where: Route, headers: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> FakeFailure | None:
        """What the real provider would refuse before looking at the request's content."""
        if self._api_key is not None:
            given = headers.get(key_header(where.wire), "")
            if where.wire == "openai":
                given = given.removeprefix("Bearer ")
            if where.wire == "gemini" and not given:
                given = query.get("key", [""])[0]
            if given != self._api_key:
                return FakeFailure(*_BAD_KEY[where.wire])
        if not isinstance(body, dict):
            return FakeFailure(400, "the request body is not a JSON object")
        if where.wire == "azure" and "api-version" not in query:
            return FakeFailure(404, "Resource not found: no api-version query parameter")
        if where.wire == "anthropic" and "anthropic-version" not in headers:
            return FakeFailure(400, "anthropic-version: header is required")
        if where.wire in ("openai", "anthropic") and not body.get("model"):
            return FakeFailure(400, "model: field required")
        return None

    def _next(self, logged: LoggedRequest) -> Scripted | None:
        if self._responder is not None:
            return self._responder(logged)
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            self._problems.append(f"request {len(self._log)} ({logged.path}) had no answer left")
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    #: Clients that open many connections at once (a load test) are not turned away.
    request_queue_size = 128


class _Out:
    def __init__(self, status: int, body: str | bytes, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = headers or {}


def _handler(fake: FakeModelServer, *, keep_alive: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
        disable_nagle_algorithm = keep_alive

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                out = fake._answer(method, self.path, headers, raw)
            except Exception as exc:  # a responder's bug: say so, as an answer and a problem
                with fake._lock:
                    fake._problems.append(f"the responder raised {exc!r}")
                out = _Out(500, json.dumps({"error": {"message": f"responder raised {exc!r}"}}))
            self.send_response(out.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out.body)))
            for name, value in out.headers.items():
                self.send_header(name, value)
            self.end_headers()
            # A client that gave up waiting (a timeout test) has nothing left to be told.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(out.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is the record; stderr noise helps no one

    return Handler
