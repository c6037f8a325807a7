"""The ``http`` node's runner against a real server on 127.0.0.1: what a call returns, what
each failure comes to, and that a filled-in ``${NAME}`` value is never in either."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import httpx
import pytest

from tether.agents.http_node import (
    HttpArgsError,
    HttpMalformed,
    HttpRateLimited,
    HttpRejected,
    HttpTooLarge,
    HttpTransient,
    call_http,
)
from tether.errors import NonRetryableError, RateLimited

pytestmark = pytest.mark.anyio

TOKEN = "tok-SeCrEt-9f8e7d6c5b4a"
#: A value a URL query must escape: it would end the parameter, or the URL, if sent raw.
QUERY_TOKEN = "q&k=v/9 #frag"


@dataclass(frozen=True)
class Reply:
    """What the server answers. ``hold`` waits for the test's end before answering (or, when
    ``stall`` too, after the headers and half the body); ``length`` says whether Content-Length
    is sent (else the body ends when the connection does)."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    hold: bool = False
    stall: bool = False
    length: bool = True


@dataclass(frozen=True)
class Seen:
    """A request as the server got it (header names lower-cased)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


Route = Reply | Callable[[Seen], Reply]


@dataclass
class Server:
    """A threaded HTTP server that records requests and answers from ``routes`` by path."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Seen(self.command, self.path, headers, self.rfile.read(size))
            state.seen.append(seen)
            route = state.routes.get(urlsplit(self.path).path, Reply(404, b"no route"))
            reply = route(seen) if callable(route) else route
            if reply.hold and not reply.stall:
                state.release.wait()
                return
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.length:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.stall:
                self.wfile.write(reply.body[: len(reply.body) // 2])
                self.wfile.flush()
                state.release.wait()
                return
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test output is for the tests

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    # A short poll: shutdown() waits up to one poll interval for the loop to notice.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    state.release.set()  # let held requests end, so the server can close
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def json_reply(value: Any, status: int = 200, *extra: tuple[str, str]) -> Reply:
    headers = (("Content-Type", "application/json"), *extra)
    return Reply(status, json.dumps(value).encode(), headers)


def text_reply(text: str, status: int = 200, *extra: tuple[str, str]) -> Reply:
    return Reply(status, text.encode(), (("Content-Type", "text/plain"), *extra))


def echo(status: int, content_type: str = "text/plain") -> Callable[[Seen], Reply]:
    """A server that says back what it was sent, keys and all, as servers' errors do."""

    def reply(seen: Seen) -> Reply:
        said = {"authorization": seen.headers.get("authorization"), "target": seen.target}
        body = json.dumps({"error": {"message": "bad key", "you_sent": said}})
        return Reply(status, body.encode(), (("Content-Type", content_type),))

    return reply


class Vault:
    """A SecretSource holding a few values."""

    def __init__(self, **values: str) -> None:
        self.values = values

    def secret(self, name: str) -> str | None:
        return self.values.get(name)


def assert_no_token(*things: object) -> None:
    """No form of the tokens (raw or escaped) in what a call returned or raised."""
    forms = {TOKEN, QUERY_TOKEN, quote(QUERY_TOKEN, safe=""), quote_plus(QUERY_TOKEN)}
    for thing in things:
        texts = [repr(thing)]
        if isinstance(thing, BaseException):
            texts += [str(thing), repr(vars(thing)), "".join(traceback.format_exception(thing))]
        for text in texts:
            assert not [form for form in forms if form in text], text


# -- what a call returns


async def test_get_json_keeps_only_safe_headers(server: Server) -> None:
    server.routes["/items"] = json_reply(
        {"items": [1, 2]}, 200, ("X-Request-Id", "r-1"), ("Set-Cookie", "session=abc")
    )
    reply = await call_http({"url": server.url("/items?page=2")})
    assert reply["status"] == 200
    assert reply["body"] == {"items": [1, 2]}
    assert reply["headers"] == {
        "content-type": "application/json", "content-length": "17", "x-request-id": "r-1",
    }  # fmt: skip
    assert (server.seen[0].method, server.seen[0].target) == ("GET", "/items?page=2")


async def test_post_json_body(server: Server) -> None:
    server.routes["/items"] = json_reply({"id": 7}, 201)
    args = {"method": "post", "url": server.url("/items"), "body": {"name": "x", "n": [1, None]}}
    reply = await call_http({**args, "expect_status": [201]})
    assert reply == {"status": 201, "headers": reply["headers"], "body": {"id": 7}}
    seen = server.seen[0]
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/json"
    assert json.loads(seen.body) == {"name": "x", "n": [1, None]}


async def test_a_string_body_goes_as_text_and_text_comes_back(server: Server) -> None:
    server.routes["/echo"] = lambda seen: text_reply(f"got {seen.body.decode()}")
    reply = await call_http({"method": "PUT", "url": server.url("/echo"), "body": "héllo"})
    assert reply["body"] == "got héllo"
    assert server.seen[0].headers["content-type"] == "text/plain; charset=utf-8"


async def test_a_content_type_header_wins_over_the_bodys(server: Server) -> None:
    server.routes["/x"] = text_reply("ok")
    headers = {"content-type": "application/x-ndjson"}
    await call_http(
        {"method": "POST", "url": server.url("/x"), "body": {"a": 1}, "headers": headers}
    )
    assert server.seen[0].headers["content-type"] == "application/x-ndjson"


async def test_response_modes(server: Server) -> None:
    server.routes["/plain-json"] = text_reply('{"a": 1}')
    server.routes["/json"] = json_reply({"a": 1})
    server.routes["/empty"] = Reply(204, b"", (("Content-Type", "application/json"),))
    server.routes["/vnd"] = Reply(200, b"[1]", (("Content-Type", "application/vnd.x+json"),))
    url = server.url
    assert (await call_http({"url": url("/plain-json")}))["body"] == '{"a": 1}'
    assert (await call_http({"url": url("/plain-json"), "response": "json"}))["body"] == {"a": 1}
    assert (await call_http({"url": url("/json"), "response": "text"}))["body"] == '{"a": 1}'
    assert (await call_http({"url": url("/empty")}))["body"] is None
    assert (await call_http({"url": url("/vnd")}))["body"] == [1]


async def test_expect_status(server: Server) -> None:
    server.routes["/gone"] = text_reply("nothing here", 404)
    server.routes["/ok"] = text_reply("fine", 200)
    reply = await call_http({"url": server.url("/gone"), "expect_status": [200, 404]})
    assert (reply["status"], reply["body"]) == (404, "nothing here")
    with pytest.raises(HttpRejected) as caught:
        await call_http({"url": server.url("/ok"), "expect_status": [202]})
    assert caught.value.status == 200
    assert "200 (expected 202)" in str(caught.value)


async def test_redirects_are_not_followed(server: Server) -> None:
    server.routes["/old"] = Reply(302, b"", (("Location", "/new"),))
    with pytest.raises(HttpRejected, match="302"):
        await call_http({"url": server.url("/old")})
    reply = await call_http({"url": server.url("/old"), "expect_status": [302]})
    assert reply["headers"]["location"] == "/new"
    assert [seen.target for seen in server.seen] == ["/old", "/old"]


async def test_a_given_client_is_used_and_left_open(server: Server) -> None:
    server.routes["/x"] = text_reply("ok")
    async with httpx.AsyncClient(headers={"X-From-Client": "yes"}) as client:
        await call_http({"url": server.url("/x")}, client=client)
        assert not client.is_closed
    assert server.seen[0].headers["x-from-client"] == "yes"


# -- what failures come to


async def test_429_parks_for_retry_after_seconds(server: Server) -> None:
    server.routes["/x"] = text_reply("slow down", 429, ("Retry-After", "17"))
    with pytest.raises(HttpRateLimited) as caught:
        await call_http({"url": server.url("/x")})
    assert isinstance(caught.value, RateLimited)
    assert not isinstance(caught.value, NonRetryableError)
    assert (caught.value.retry_after, caught.value.status) == (17.0, 429)
    assert "slow down" in str(caught.value)


async def test_429_parks_until_an_http_date(server: Server) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    server.routes["/x"] = text_reply("later", 429, ("Retry-After", when))
    with pytest.raises(HttpRateLimited) as caught:
        await call_http({"url": server.url("/x")})
    assert 100 < caught.value.retry_after_secs <= 120  # the date is to the second


async def test_429_without_a_hint_parks_for_the_default(server: Server) -> None:
    server.routes["/x"] = text_reply("", 429)
    with pytest.raises(HttpRateLimited) as caught:
        await call_http({"url": server.url("/x")})
    assert caught.value.retry_after == 5.0
    assert "(no body)" in str(caught.value)


@pytest.mark.parametrize("status", [503, 529])
async def test_503_and_529_park_only_when_they_say_when(server: Server, status: int) -> None:
    server.routes["/hint"] = text_reply("busy", status, ("Retry-After", "3"))
    server.routes["/none"] = text_reply("busy", status)
    with pytest.raises(HttpRateLimited) as parked:
        await call_http({"url": server.url("/hint")})
    assert (parked.value.retry_after, parked.value.status) == (3.0, status)
    with pytest.raises(HttpTransient) as failed:
        await call_http({"url": server.url("/none")})
    assert failed.value.status == status
    assert not isinstance(failed.value, NonRetryableError | RateLimited)


async def test_500_is_transient(server: Server) -> None:
    server.routes["/x"] = text_reply("boom", 500)
    with pytest.raises(HttpTransient, match=r"server failed \(500\): boom") as caught:
        await call_http({"url": server.url("/x")})
    assert caught.value.status == 500


async def test_404_is_rejected_with_a_bounded_one_line_excerpt(server: Server) -> None:
    body = "no such item\n" + "x" * 1000
    server.routes["/items/9"] = text_reply(body, 404)
    with pytest.raises(HttpRejected) as caught:
        await call_http({"method": "DELETE", "url": server.url("/items/9")})
    error = caught.value
    assert isinstance(error, NonRetryableError)
    assert error.status == 404
    assert str(error).startswith(f"http: DELETE {server.url('/items/9')}: 404 (expected 2xx): ")
    assert "no such item xxx" in str(error)
    assert "\n" not in str(error)
    assert len(error.excerpt) < 350


async def test_a_server_that_holds_its_answer_times_out(server: Server) -> None:
    server.routes["/slow"] = Reply(hold=True)
    with pytest.raises(HttpTransient, match=r"no answer within 0\.2s") as caught:
        await call_http({"url": server.url("/slow"), "timeout_secs": 0.2})
    assert caught.value.status == 0


async def test_a_body_that_stops_coming_times_out(server: Server) -> None:
    server.routes["/slow"] = Reply(200, b"a" * 100, hold=True, stall=True)
    with pytest.raises(HttpTransient, match=r"no answer within 0\.2s"):
        await call_http({"url": server.url("/slow"), "timeout_secs": 0.2})


async def test_a_server_that_is_not_there_is_transient() -> None:
    with socket.socket() as probe:  # a port just freed: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HttpTransient, match="failed before an answer"):
        await call_http({"url": f"http://127.0.0.1:{port}/"})


async def test_a_body_that_is_not_json_is_malformed(server: Server) -> None:
    server.routes["/x"] = text_reply("<html>" + "y" * 5000)
    with pytest.raises(HttpMalformed) as caught:
        await call_http({"url": server.url("/x"), "response": "json"})
    error = caught.value
    assert isinstance(error, NonRetryableError)
    assert error.raw.startswith("<html>yyy")
    assert len(error.raw) < 2100
    server.routes["/x"] = Reply(200, b"{not json", (("Content-Type", "application/json"),))
    with pytest.raises(HttpMalformed):
        await call_http({"url": server.url("/x")})  # auto, and the server said JSON


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "streamed"])
async def test_a_body_over_max_bytes_is_refused(server: Server, length: bool) -> None:
    server.routes["/big"] = Reply(200, b"z" * 5000, length=length)
    server.routes["/fits"] = Reply(200, b"z" * 1000, length=length)
    with pytest.raises(HttpTooLarge, match=r"over max_bytes \(1000 bytes\)") as caught:
        await call_http({"url": server.url("/big"), "max_bytes": 1000})
    assert isinstance(caught.value, NonRetryableError)
    reply = await call_http({"url": server.url("/fits"), "max_bytes": 1000})
    assert reply["body"] == "z" * 1000


# -- ${NAME}: resolved where the call runs, never in what it says


async def test_a_header_placeholder_from_environ(server: Server) -> None:
    server.routes["/me"] = json_reply({"ok": True})
    args = {"url": server.url("/me"), "headers": {"Authorization": "Bearer ${API_TOKEN}"}}
    reply = await call_http(args, environ={"API_TOKEN": TOKEN})
    assert server.seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert reply["body"] == {"ok": True}
    assert args["headers"] == {"Authorization": "Bearer ${API_TOKEN}"}  # the journaled args


async def test_a_secret_source_comes_before_environ(server: Server) -> None:
    server.routes["/me"] = json_reply({})
    headers = {"Authorization": "Bearer ${API_TOKEN}", "X-Org": "${secret:ORG}"}
    secrets = Vault(API_TOKEN=TOKEN, ORG="org-1")
    await call_http(
        {"url": server.url("/me"), "headers": headers},
        secrets=secrets, environ={"API_TOKEN": "from-environ"},
    )  # fmt: skip
    assert server.seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert server.seen[0].headers["x-org"] == "org-1"


async def test_a_query_placeholder_is_escaped_as_one_value(server: Server) -> None:
    server.routes["/search"] = json_reply([])
    url = server.url("/search?q=cats&key=${API_KEY}")
    await call_http({"url": url}, environ={"API_KEY": QUERY_TOKEN})
    assert server.seen[0].query == {"q": ["cats"], "key": [QUERY_TOKEN]}


async def test_a_missing_variable_is_named_not_sent(server: Server) -> None:
    headers = {"Authorization": "Bearer ${API_TOKEN}"}
    with pytest.raises(HttpArgsError, match=r"headers\.Authorization: \$\{API_TOKEN\} has no"):
        await call_http({"url": server.url("/me"), "headers": headers}, environ={})
    headers = {"X-Org": "${secret:ORG}"}  # a secret reference does not fall back to environ
    with pytest.raises(HttpArgsError, match=r"no secret ORG"):
        await call_http({"url": server.url("/me"), "headers": headers}, environ={"ORG": "o"})
    assert server.seen == []


async def test_a_filled_value_that_cannot_be_a_header_is_not_shown(server: Server) -> None:
    with pytest.raises(HttpArgsError, match="a value filled into it must be ASCII") as caught:
        await call_http(
            {"url": server.url("/"), "headers": {"Authorization": "Bearer ${API_TOKEN}"}},
            environ={"API_TOKEN": TOKEN + "\r\nX-Evil: 1"},
        )
    assert_no_token(caught.value)
    assert server.seen == []


ECHOED: dict[str, tuple[Callable[[Seen], Reply], type[Exception] | None]] = {
    "200 json": (echo(200, "application/json"), None),
    "200 text": (echo(200), None),
    "401": (echo(401), HttpRejected),
    "429": (echo(429), HttpRateLimited),
    "500": (echo(500), HttpTransient),
    "not json": (lambda seen: Reply(200, b"{" + echo(200)(seen).body), HttpMalformed),
}


@pytest.mark.parametrize("case", list(ECHOED))
async def test_an_echoed_value_is_in_no_result_or_error(server: Server, case: str) -> None:
    route, error = ECHOED[case]
    server.routes["/api"] = route
    args = {
        "url": server.url("/api?key=${QUERY_TOKEN}"),
        "headers": {"Authorization": "Bearer ${API_TOKEN}"},
        "response": "json" if case == "not json" else "auto",
    }
    environ = {"API_TOKEN": TOKEN, "QUERY_TOKEN": QUERY_TOKEN}
    if error is None:
        reply = await call_http(args, environ=environ)
        assert "${API_TOKEN}" in repr(reply) and "${QUERY_TOKEN}" in repr(reply)
        assert_no_token(reply)
    else:
        with pytest.raises(error) as caught:
            await call_http(args, environ=environ)
        assert "${API_TOKEN}" in str(caught.value) or "${API_TOKEN}" in repr(vars(caught.value))
        assert_no_token(caught.value)
    assert server.seen[0].headers["authorization"] == f"Bearer {TOKEN}"  # it was sent


# -- arguments


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"url": "http://h/", "method": "FETCH"}, "method"),
        ({}, "url"),
        ({"url": "ftp://h/x"}, "url"),
        ({"url": "http://${HOST}/x"}, "url"),
        ({"url": "http://h/", "headers": ["a"]}, "headers"),
        ({"url": "http://h/", "headers": {"X-N": 1}}, "headers.X-N"),
        ({"url": "http://h/", "headers": {"bad name": "v"}}, "headers"),
        ({"url": "http://h/", "body": {"at": object()}}, "body"),
        ({"url": "http://h/", "expect_status": [200, 700]}, "expect_status"),
        ({"url": "http://h/", "expect_status": []}, "expect_status"),
        ({"url": "http://h/", "expect_status": [True]}, "expect_status"),
        ({"url": "http://h/", "timeout_secs": -1}, "timeout_secs"),
        ({"url": "http://h/", "timeout_secs": "5"}, "timeout_secs"),
        ({"url": "http://h/", "response": "xml"}, "response"),
        ({"url": "http://h/", "max_bytes": 0}, "max_bytes"),
        ({"url": "http://h/", "header": {}}, "'header'"),
    ],
)
async def test_bad_args_name_their_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(HttpArgsError) as caught:
        await call_http(args, environ={})
    message = str(caught.value)
    assert isinstance(caught.value, NonRetryableError)
    assert f"http: {field}" in message or f"argument {field}" in message, message
    assert "\n" not in message
