"""Input that costs too much at the HTTP boundary of a real ``tether dev``: each is a 4xx
that says why, the engine keeps serving, and an unforeseen failure is a 500 whose request id
the engine's log names too (I10 clear errors)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server_http import APPROVAL, EXAMPLES, Engine, ir_of, running_engine

JSON = {"content-type": "application/json"}
MAX_BODY = 64 * 1024


def post_raw(c: httpx.Client, path: str, body: str) -> httpx.Response:
    """POST ``body`` as it is: json= would refuse to encode what these tests send."""
    return c.post(path, content=body.encode(), headers=JSON)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = Path(tmp_path_factory.mktemp("cost"))
    with running_engine(tmp, {"TETHER_MAX_BODY_BYTES": str(MAX_BODY)}) as e:
        with httpx.Client(base_url=e.url) as c:
            c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).raise_for_status()
        yield e


def test_deep_json_is_a_400_naming_the_depth_I10(engine: Engine) -> None:
    deep = "[" * 990 + "]" * 990
    with httpx.Client(base_url=engine.url) as c:
        for path, body in [
            ("/executions", f'{{"workflow_id": "counter", "input": {{"x": {deep}}}}}'),
            ("/workflows", f'{{"ir": {{"nodes": {deep}}}}}'),
        ]:
            got = post_raw(c, path, body)
            assert got.status_code == 400, got.text
            assert "levels deep; at most 100" in got.json()["error"]
        fine = "[" * 50 + "]" * 50
        ok = post_raw(c, "/executions", f'{{"workflow_id": "counter", "input": {{"x": {fine}}}}}')
        assert ok.status_code == 201, ok.text


def test_a_not_chain_of_5000_in_a_condition_is_a_400_I10(engine: Engine) -> None:
    ir = ir_of(EXAMPLES / "counter.yaml")
    ir["workflow_id"] = "deep-condition"
    ir["edges"][0]["condition"] = "not " * 5000 + "n < 3"
    with httpx.Client(base_url=engine.url) as c:
        got = c.post("/workflows", json={"ir": ir})
        assert got.status_code in (400, 422), got.text
        assert "deep" in got.json()["error"]


def test_numbers_past_64_bits_are_a_422_naming_them_I10(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        c.post("/workflows", json={"ir": ir_of(APPROVAL)}).raise_for_status()
        started = c.post("/executions", json={"workflow_id": "pay", "input": {"n": 0}})
        eid = started.json()["execution_id"]  # it waits for an approval: it takes events
        event = f"/executions/{eid}/external-event"
        big = post_raw(c, event, '{"correlation_key": "k", "payload": 18446744073709551616}')
        assert big.status_code == 422 and "18446744073709551616" in big.json()["error"]
        digits = post_raw(
            c, "/executions", f'{{"workflow_id": "x", "input": {{"n": {"7" * 4300}}}}}'
        )
        assert digits.status_code == 422 and "4300 characters" in digits.json()["error"]
        text = c.post(event, json={"correlation_key": "k", "payload": "18446744073709551616"})
        assert "64 bits" not in text.json()["error"]  # the same digits in a string are text


def test_a_body_over_the_bound_is_a_413_declared_or_chunked_I10(engine: Engine) -> None:
    payload = json.dumps({"workflow_id": "counter", "input": {"s": "x" * MAX_BODY}}).encode()
    with httpx.Client(base_url=engine.url) as c:
        declared = c.post("/executions", content=payload, headers=JSON)
        assert declared.status_code == 413 and "TETHER_MAX_BODY_BYTES" in declared.json()["error"]
        chunked = c.post("/executions", content=iter([payload[:1000], payload[1000:]]),
                         headers=JSON)  # fmt: skip
        assert chunked.status_code == 413, chunked.text
        assert c.get("/health").status_code == 200


def test_an_unforeseen_error_is_a_500_whose_request_id_the_log_names_I10(tmp_path: Path) -> None:
    with (
        running_engine(tmp_path, modules="tools,faulty_route") as e,
        httpx.Client(base_url=e.url) as c,
    ):
        got = c.get("/workers")
        assert got.status_code == 500
        body = got.json()
        request_id = body["request_id"]
        assert request_id in body["error"] and "Traceback" not in body["error"]
        lines = [json.loads(line) for line in e.log.read_text().splitlines() if "{" in line[:1]]
        [logged] = [x for x in lines if x.get("request_id") == request_id]
        assert logged["level"] == "error" and logged["path"] == "/workers"
        assert "ZeroDivisionError: planted by the test" in logged["exception"]


def test_an_unterminated_string_costs_one_pass_not_one_per_quote_I10() -> None:
    """A string without its closing quote, full of escaped quotes, made the scan start again
    at every quote: quadratic, ~50 minutes of a blocked event loop for 1 MiB. Now one pass
    (a regression hangs into the test timeout); the decoder then refuses it as malformed."""
    from tether.server.json_shape import json_shape_problem

    assert json_shape_problem(b'"' + b'\\"' * 500_000) is None
    assert json_shape_problem(b'{"a": "[[[\\"", "b": [1]}') is None  # text is not structure


def read_response(raw: socket.socket) -> str:
    """One whole HTTP response (head and the body its Content-Length says), however the
    bytes are split across reads."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = raw.recv(4096)
        assert chunk, f"the connection closed mid-head: {got!r}"
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = raw.recv(4096)
        assert chunk, f"the connection closed mid-body: {got!r}"
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_without_the_token_no_body_is_read_and_a_dripped_body_is_cut_off_I14(
    tmp_path: Path,
) -> None:
    """A caller without the token is refused before its body is read (here: a body declared
    far over the bound still gets the 401, not the 413), and a body that does not arrive
    within the deadline is answered 408, freeing its connection."""
    token = "a-token-of-20-chars!"
    env = {"TETHER_TOKEN": token, "TETHER_HEADER_TIMEOUT_SECS": "1"}
    with running_engine(tmp_path, env) as e:

        def send_head(auth: str, length: int) -> str:
            head = (
                f"POST /workflows HTTP/1.1\r\nHost: 127.0.0.1:{e.port}\r\n{auth}"
                f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{"
            )
            with socket.create_connection(("127.0.0.1", e.port), timeout=30) as raw:
                raw.sendall(head.encode())
                return read_response(raw)  # blocks until the engine answers

        refused = send_head("", 100 * MAX_BODY)
        assert refused.startswith("HTTP/1.1 401"), refused
        late = send_head(f"Authorization: Bearer {token}\r\n", 1000)
        assert late.startswith("HTTP/1.1 408") and "did not arrive" in late, late
