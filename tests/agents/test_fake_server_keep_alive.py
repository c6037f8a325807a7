"""The fake model server's ``keep_alive`` option: HTTP/1.1 connections that serve many calls,
as a load test (``python -m benchmarks agents``) needs, while the default stays HTTP/1.0."""

from __future__ import annotations

import http.client
import json
import time

import anyio
import httpx
import pytest

from tether.testing.fake_models import FakeModelServer, FakeReply

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json", "authorization": "Bearer k"}


def _ask(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("POST", "/v1/chat/completions", body=BODY, headers=HEADERS)
    resp = conn.getresponse()
    resp.read()
    return resp


def test_keep_alive_answers_many_calls_on_one_connection() -> None:
    with FakeModelServer(lambda _: FakeReply("ok"), api_key="k", keep_alive=True) as server:
        conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
        first = _ask(conn)
        sock = conn.sock
        answers = [_ask(conn) for _ in range(3)]
        conn.close()
    assert first.status == 200 and first.version == 11 and not first.will_close
    assert [a.status for a in answers] == [200] * 3
    assert conn.sock is None and sock is not None  # no reconnect happened in between
    assert len(server.requests) == 4


def test_by_default_each_answer_closes_its_connection() -> None:
    with FakeModelServer([FakeReply("ok")], api_key="k") as server:
        conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
        resp = _ask(conn)
        conn.close()
    assert resp.status == 200 and resp.version == 10 and resp.will_close


def test_keep_alive_answers_are_not_held_back_by_nagle() -> None:
    # With Nagle on, each answer's body waits for the ACK of its headers: ~40 ms (the client's
    # delayed ACK) per call, so 20 calls would take 0.8 s. Unloaded they take a few ms.
    with FakeModelServer(lambda _: FakeReply("ok"), keep_alive=True) as server:
        conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
        _ask(conn)
        started = time.perf_counter()
        for _ in range(20):
            _ask(conn)
        took = time.perf_counter() - started
        conn.close()
    assert took < 0.5, f"20 calls on one connection took {took:.2f}s"


@pytest.mark.anyio
async def test_keep_alive_serves_fifty_clients_at_once() -> None:
    with FakeModelServer(lambda _: FakeReply("ok"), api_key="k", keep_alive=True) as server:
        statuses: list[int] = []
        async with httpx.AsyncClient(timeout=10) as client:

            async def call_twice() -> None:
                for _ in range(2):
                    resp = await client.post(
                        f"{server.openai_base_url}/chat/completions", content=BODY, headers=HEADERS
                    )
                    statuses.append(resp.status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(call_twice)
    assert statuses == [200] * 100
    assert len(server.requests) == 100
