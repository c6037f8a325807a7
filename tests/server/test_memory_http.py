"""Durable memory over a real ``tether dev`` (with a token): the routes under
``/memory/{user}`` and ``tether memory list|write|context`` as a user runs them. A newer fact
about a subject shows what it superseded; a context stays in its budget and holds only its
user's facts; bad input is a 4xx naming the field and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_server_http import DEADLINE, Engine

TOKEN = "memory-token-of-16"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    e = Engine(Path(tmp_path_factory.mktemp("memory")), {"TETHER_TOKEN": TOKEN}).start()
    try:
        yield e
    finally:
        e.kill()


@pytest.fixture
def api(engine: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, headers=AUTH, timeout=DEADLINE) as c:
        yield c


def memory(engine: Engine, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", "memory", *args],
        env={**os.environ, "TETHER_ENGINE_URL": engine.url, "TETHER_TOKEN": token},
        capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip


def write(api: httpx.Client, user: str, **body: Any) -> dict[str, Any]:
    resp = api.post(f"/memory/{user}/facts", json=body)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_a_newer_fact_supersedes_and_the_list_shows_it(api: httpx.Client) -> None:
    pune = write(api, "ana", subject="location", content="Pune")
    ams = write(api, "ana", subject="location", content="Amsterdam")
    tea = write(api, "ana", subject="drink", content="tea")
    coffee = write(api, "ana", subject="morning", content="coffee", supersedes=tea["fact_id"])
    assert (pune["written"], pune["current"], pune["supersedes"]) == (True, True, None)
    facts = {f["content"]: f for f in api.get("/memory/ana/facts").json()["facts"]}
    assert facts["Pune"]["current"] is False
    assert facts["Pune"]["superseded_by"] == ams["fact_id"]
    assert facts["tea"]["superseded_by"] == coffee["fact_id"]  # named, whatever its subject
    assert facts["coffee"]["supersedes"] == tea["fact_id"]
    assert [f["content"] for f in facts.values() if f["current"]] == ["Amsterdam", "coffee"]
    current = api.get("/memory/ana/facts", params={"current": "true"}).json()["facts"]
    assert [f["content"] for f in current] == ["Amsterdam", "coffee"]
    again = api.post("/memory/ana/facts", json={"subject": "location", "content": "Oslo",
                                                "fact_id": ams["fact_id"]})  # fmt: skip
    assert again.status_code == 201 and again.json()["written"] is False
    assert again.json()["content"] == "Amsterdam"  # the first write of an id stands


def test_context_stays_in_budget_and_holds_only_its_users_facts(api: httpx.Client) -> None:
    for i in range(30):
        write(api, "bo", subject=f"trip {i}", content=f"went to city number {i} by train")
    write(api, "cy", subject="trip", content="secret city of cy by train")
    ctx = api.get("/memory/bo/context", params={"topic": "train trip", "budget_tokens": 40})
    assert ctx.status_code == 200, ctx.text
    body = ctx.json()
    assert 0 < body["tokens"] <= 40 and body["budget_tokens"] == 40
    assert 0 < len(body["facts"]) < 30
    assert "cy" not in body["text"]
    assert all(f["subject"].startswith("trip ") for f in body["facts"])
    nobody = api.get("/memory/nobody/context", params={"topic": "train"}).json()
    assert (nobody["facts"], nobody["text"], nobody["tokens"]) == ([], "", 0)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("post", "/memory/dee/facts", {"subject": "", "content": "x"}, 422, "subject"),
        ("post", "/memory/dee/facts", {"subject": "s", "content": "x" * 70_000}, 422,
         "content must be a string of at most 65536"),
        ("post", "/memory/dee/facts", {"subject": "s", "content": "x", "supersedes": "nope"},
         422, "supersedes 'nope' names no fact of user 'dee'"),
        ("post", "/memory/dee/facts", {"subject": "s"}, 400, "content"),
        ("post", "/memory/dee/facts", {"subject": "s", "content": "x", "colour": 1}, 400,
         "colour"),
        ("post", "/memory/dee/facts", [1, 2], 400, ""),
        ("get", "/memory/dee/context?budget_tokens=0", None, 422, "budget_tokens must be"),
        ("get", "/memory/dee/context?budget_tokens=lots", None, 400, "budget_tokens"),
        ("get", "/memory/%20/facts", None, 422, "user must be"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_naming_what_and_loses_nothing_I10(
    api: httpx.Client, method: str, path: str, body: Any, status: int, says: str
) -> None:
    kept = write(api, "dee", subject="name", content="Dee")
    before = api.get("/memory/dee/facts").json()
    resp = api.request(method.upper(), path, json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]  # one line, and the field it names among its issues
    assert says in json.dumps(resp.json())
    assert "Traceback" not in resp.text
    assert api.get("/memory/dee/facts").json() == before
    assert kept["fact_id"] in {f["fact_id"] for f in before["facts"]}


def test_the_routes_need_the_token(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url, timeout=DEADLINE) as c:
        assert c.get("/memory/ana/facts").status_code == 401
        assert c.post("/memory/ana/facts", json={"subject": "s", "content": "x"}).status_code == 401
        assert c.get("/memory/ana/context").status_code == 401
    refused = memory(engine, "list", "ana", token="wrong-token-000000")
    assert refused.returncode == 1 and refused.stderr.startswith("tether memory: 401")


def test_the_cli_writes_lists_and_gives_a_context(engine: Engine) -> None:
    first = memory(engine, "write", "eve", "location", "Pune")
    assert first.returncode == 0, first.stderr
    pune_id = first.stdout.split()[0]
    assert first.stdout.strip().endswith("written")
    second = memory(engine, "write", "eve", "location", "Amsterdam")
    assert second.returncode == 0, second.stderr
    table = memory(engine, "list", "eve")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["FACT", "SUBJECT", "CONTENT", "STATUS"]
    ams_id = second.stdout.split()[0]
    assert lines[1].split()[:3] == [pune_id, "location", "Pune"]
    assert lines[1].endswith(f"superseded by {ams_id} (Amsterdam)")
    assert lines[2].endswith("current (superseded Pune)")
    listed = json.loads(memory(engine, "--json", "list", "eve", "--current").stdout)
    assert [f["content"] for f in listed] == ["Amsterdam"]
    ctx = memory(engine, "context", "eve", "--topic", "where to meet", "--budget-tokens", "50")
    assert ctx.returncode == 0, ctx.stderr
    assert ctx.stdout.splitlines() == ["location: Amsterdam", "(5 of 50 tokens, 1 facts)"]
    again = memory(engine, "write", "eve", "location", "Rome", "--fact-id", ams_id)
    assert again.stdout.strip() == f"{ams_id}  already written (nothing changed)"
    bad = memory(engine, "write", "eve", "", "x")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "tether memory: 422: subject must be a non-empty string"
    wrong = memory(engine, "context", "eve", "--budget-tokens", "0")
    assert wrong.returncode == 1 and "budget_tokens must be 1-1000000, got 0" in wrong.stderr
