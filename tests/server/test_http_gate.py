"""What a web page can make a browser send to a real ``tether dev`` on loopback, refused:
bodies that are not declared JSON (415), a Host that is not this engine's (421, DNS
rebinding) and a foreign Origin (403). /health stays open to all (I14 every peer is someone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server_http import EXAMPLES, Engine, ir_of, running_engine

BODY = b'{"workflow_id": "counter", "input": {"n": 0}}'
JSON = {"content-type": "application/json"}
JSON_UTF8 = "application/json; charset=utf-8"
#: What a browser sends cross-origin without a CORS preflight, plus no type at all.
SIMPLE_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = Path(tmp_path_factory.mktemp("gate"))
    with running_engine(tmp, {"TETHER_ALLOWED_HOSTS": "tether.internal"}) as e:
        with httpx.Client(base_url=e.url) as c:
            c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).raise_for_status()
        yield e


def test_a_body_not_declared_json_is_a_415_and_starts_nothing_I14(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        for media in SIMPLE_TYPES:
            headers = {"content-type": media} if media else {}
            got = c.post("/executions", content=BODY, headers=headers)
            assert got.status_code == 415, (media, got.text)
            assert "Content-Type: application/json" in got.json()["error"]
        for path in ("/workflows", "/executions/x/cancel", "/executions/x/approve",
                     "/executions/x/external-event", "/work-items/claim",
                     "/work-items/x/complete"):  # fmt: skip
            got = c.post(path, content=b"{}", headers={"content-type": "text/plain"})
            assert got.status_code == 415, (path, got.text)
        assert c.get("/executions").json()["executions"] == []
        typed = c.post("/executions", content=BODY, headers={"content-type": JSON_UTF8})
        assert typed.status_code == 201, typed.text
        bare = c.post(f"/executions/{typed.json()['execution_id']}/cancel")  # no body, no type
        assert bare.status_code == 200, bare.text  # what the jamjet SDK's cancel sends


def test_a_host_that_is_not_this_engine_is_a_421_I14(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        for host in ("rebind.evil.example", f"rebind.evil.example:{engine.port}",
                     f"localhost:{engine.port + 1}", "127.0.0.1"):  # fmt: skip
            got = c.get("/executions", headers={"host": host})
            assert got.status_code == 421, (host, got.text)
            assert "TETHER_ALLOWED_HOSTS" in got.json()["error"]
        refused = c.post("/executions", content=BODY, headers={**JSON, "host": "evil.example"})
        assert refused.status_code == 421
        for host in (f"127.0.0.1:{engine.port}", f"localhost:{engine.port}",
                     f"[::1]:{engine.port}", "tether.internal", "Tether.Internal:443"):  # fmt: skip
            assert c.get("/executions", headers={"host": host}).status_code == 200, host
        assert c.get("/health", headers={"host": "rebind.evil.example"}).status_code == 200


def test_a_foreign_origin_is_a_403_I14(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        for origin in ("http://evil.example", f"http://localhost:{engine.port + 1}", "null",
                       f"file://127.0.0.1:{engine.port}"):  # fmt: skip
            got = c.post("/executions", content=BODY, headers={**JSON, "origin": origin})
            assert got.status_code == 403, (origin, got.text)
            assert "Origin" in got.json()["error"]
        for origin in (f"http://127.0.0.1:{engine.port}", f"http://localhost:{engine.port}",
                       "https://tether.internal"):  # fmt: skip
            assert c.get("/executions", headers={"origin": origin}).status_code == 200, origin
        assert c.get("/health", headers={"origin": "http://evil.example"}).status_code == 200
