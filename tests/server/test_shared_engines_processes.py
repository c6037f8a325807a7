"""Two ``tether dev --shared`` processes on one Postgres schema (issue 22, part 2).

- SIGKILL one engine while its runs are inside a step: the other claims them once the dead
  engine's ownership expires and finishes them; the side-effect log shows that no step whose
  completion was committed ran again (only the step the dead engine was inside runs twice:
  at-least-once for tools, exactly once for the journal).
- SIGSTOP an engine inside a step past its ownership TTL, then SIGCONT it: the other engine
  has finished the run meanwhile; the stopped engine's late result is refused by fence (its
  log says it let the run go), and the journal holds each step once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from test_server_http import DEADLINE, Engine, free_port, ir_of, wait_terminal

psycopg = pytest.importorskip("psycopg", reason="the Postgres driver: pip install -e '.[postgres]'")

pytestmark = pytest.mark.slow

CHAIN = """
workflow:
  id: effects
  version: "1"
  state_schema: {tag: {type: string, required: true}}
nodes:
  s1: {type: tool, tool: effect_step, input: {k: 1, tag: $tag}, next: s2}
  s2: {type: tool, tool: effect_step, input: {k: 2, tag: $tag}, next: s3}
  s3: {type: tool, tool: effect_step, input: {k: 3, tag: $tag}, next: end}
"""
TTL_MS = 1500


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def until(check: Callable[[], Any], what: str, deadline_s: float = DEADLINE) -> Any:
    """Poll ``check`` every 20 ms until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting: {what}")


def effects(log: Path) -> Counter[tuple[str, int, str]]:
    lines = log.read_text().split("\n") if log.exists() else []
    return Counter((w, int(k), tag) for w, k, tag, _ in (ln.split() for ln in lines if ln))


@pytest.fixture
def engines(tmp_path: Path, postgres_url: str) -> Iterator[Callable[..., Engine]]:
    with ExitStack() as stack:

        def start(**env: str) -> Engine:
            e = Engine(tmp_path, modules="shared_tools", env={
                "TETHER_DATABASE_URL": postgres_url, "TETHER_SHARED": "true",
                "TETHER_OWNERSHIP_TTL_MS": str(TTL_MS),
                "TETHER_TEST_EFFECTS": str(tmp_path / "effects.log"), **env,
            })  # fmt: skip
            stack.callback(e.kill)
            return e.start()

        yield start


def start_runs(engine: Engine, tags: list[str]) -> list[str]:
    with httpx.Client(base_url=engine.url) as c:
        c.post("/workflows", json={"ir": ir_of(CHAIN)}).raise_for_status()
        ids = []
        for tag in tags:
            r = c.post("/executions", json={"workflow_id": "effects", "input": {"tag": tag}})
            r.raise_for_status()
            ids.append(r.json()["execution_id"])
    return ids


def test_sigkill_an_engine_mid_step_its_runs_finish_on_the_other_once_I1_I3_I5(
    tmp_path: Path, postgres_url: str, engines: Callable[..., Engine]
) -> None:
    a = engines(TETHER_TEST_BLOCK_STEP="2")  # a's step 2 never returns
    b = engines()
    on_a = start_runs(a, [f"a{i}" for i in range(6)])
    on_b = start_runs(b, [f"b{i}" for i in range(3)])
    log = tmp_path / "effects.log"
    until(lambda: all(effects(log)[("start", 2, f"a{i}")] for i in range(6)),
          "a's runs to be inside step 2")  # fmt: skip
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    with httpx.Client(base_url=b.url) as c:
        for eid in on_a + on_b:
            assert wait_terminal(c, eid)["status"] == "completed"
    got = effects(log)
    for tag in [f"a{i}" for i in range(6)]:
        # committed steps 1 never ran again; step 2 ran on a (killed inside it) and on b
        assert (got[("start", 1, tag)], got[("done", 1, tag)]) == (1, 1), tag
        assert (got[("start", 2, tag)], got[("done", 2, tag)]) == (2, 1), tag
        assert (got[("start", 3, tag)], got[("done", 3, tag)]) == (1, 1), tag
    for tag in [f"b{i}" for i in range(3)]:
        assert all(got[(w, k, tag)] == 1 for w in ("start", "done") for k in (1, 2, 3)), tag
    for eid in on_a + on_b:  # the journal: each node completed once
        types = [t for (t,) in sql(postgres_url, "SELECT type FROM tether_journal WHERE"
                                   " execution_id = %s ORDER BY seq", (eid,))]  # fmt: skip
        assert types.count("node_completed") == 3, (eid, types)
    owners = dict(sql(postgres_url, "SELECT execution_id, fence FROM tether_owners"))
    assert {owners[e] for e in on_a if e in owners} <= {2}  # taken over once (fence 2)
    assert "took over 6 executions" in b.log.read_text()


def test_sigstop_past_the_ttl_then_sigcont_late_appends_are_refused_I5(
    tmp_path: Path, postgres_url: str, engines: Callable[..., Engine]
) -> None:
    a = engines(TETHER_TEST_SLOW_STEP="2:4")  # a's step 2 takes 4 s
    b = engines()
    [eid] = start_runs(a, ["s"])
    log = tmp_path / "effects.log"
    until(lambda: effects(log)[("start", 2, "s")], "a to be inside step 2")
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=b.url) as c:  # b takes the run over after a's TTL
            assert wait_terminal(c, eid)["status"] == "completed"
        engine_a = sql(postgres_url, "SELECT engine_id FROM tether_owners WHERE"
                       " execution_id = %s", (eid,))  # fmt: skip
        assert engine_a and "took over 1 executions" in b.log.read_text()
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    # a wakes inside step 2; its result's turn is refused, and it lets the run go
    until(lambda: "execution_let_go" in a.log.read_text(), "a to let the run go")
    assert "no longer owns it" in a.log.read_text()  # its step's turn was refused by fence
    until(lambda: effects(log)[("done", 2, "s")] == 2, "a's step 2 to return")
    assert httpx.get(a.url + "/health", timeout=5).status_code == 200  # a still serves
    types = [t for (t,) in sql(postgres_url, "SELECT type FROM tether_journal WHERE"
                               " execution_id = %s ORDER BY seq", (eid,))]  # fmt: skip
    assert types.count("node_completed") == 3 and types[-1] == "execution_completed"
    with httpx.Client(base_url=a.url) as c:  # a reads the run b finished
        assert c.get(f"/executions/{eid}").json()["status"] == "completed"


def start_worker(tmp: Path, like: Engine, engines: list[str], name: str) -> subprocess.Popen[bytes]:
    """``tether worker`` for ``engines``, whose step 2 takes 1.5 s (the engine's environment)."""
    argv = [sys.executable, "-m", "tether.cli", "worker", "--modules", "shared_tools",
            *engines, "--concurrency", "8", "--worker-id", name]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=like.cwd, env={**like.env, "TETHER_TEST_SLOW_STEP": "2:1.5"},
        stdout=subprocess.DEVNULL, stderr=(tmp / f"worker-{name}.log").open("ab"),
    )  # fmt: skip


def test_workers_serve_both_engines_and_an_engine_killed_mid_step_strands_nothing_I5(
    tmp_path: Path, postgres_url: str, engines: Callable[..., Engine]
) -> None:
    """Two ``tether worker --engine A --engine B`` processes run every step (no in-process
    pool). A SIGKILL of A while its runs' steps run on the workers: B takes the runs over,
    puts their leased items back to pending and grants them to the workers again; nothing
    committed runs twice, and the workers go on serving B."""
    ports = [free_port(), free_port()]
    a = engines(TETHER_EMBED_WORKERS="0", TETHER_WORKER_PORT=str(ports[0]))
    b = engines(TETHER_EMBED_WORKERS="0", TETHER_WORKER_PORT=str(ports[1]))
    log = tmp_path / "effects.log"
    engines_args = [a for port in ports for a in ("--engine", f"tcp://127.0.0.1:{port}")]
    workers = [start_worker(tmp_path, a, engines_args, f"w{i}") for i in range(2)]
    try:
        for engine in (a, b):  # each engine sees both workers
            until(lambda e=engine: len(httpx.get(e.url + "/workers").json()["workers"]) == 2,
                  "both workers to join each engine")  # fmt: skip
        on_a = start_runs(a, [f"a{i}" for i in range(6)])
        on_b = start_runs(b, [f"b{i}" for i in range(3)])
        until(lambda: all(effects(log)[("start", 2, f"a{i}")] for i in range(6)),
              "a's runs to be inside step 2 on the workers")  # fmt: skip
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        committed = {
            (eid, msgspec.msgpack.decode(payload)["node_id"])
            for eid in on_a
            for (payload,) in sql(postgres_url, "SELECT payload FROM tether_journal WHERE"
                                  " execution_id = %s AND type = 'node_completed'", (eid,))
        }  # fmt: skip
        assert committed  # steps 1 were committed before the kill
        running = "SELECT count(*) FROM tether_executions WHERE execution_id = ANY(%s)"
        [(unfinished,)] = sql(postgres_url, running + " AND status = 'running'", (on_a,))
        with httpx.Client(base_url=b.url) as c:
            for eid in on_a + on_b:
                assert wait_terminal(c, eid)["status"] == "completed"
        got = effects(log)
        tags = dict(zip(on_a, [f"a{i}" for i in range(6)], strict=True))
        for eid, node in committed:  # a step committed before the kill never ran again
            assert got[("start", int(node[1:]), tags[eid])] == 1, (eid, node)
        for eid in on_a + on_b:
            types = [t for (t,) in sql(postgres_url, "SELECT type FROM tether_journal WHERE"
                                       " execution_id = %s ORDER BY seq", (eid,))]  # fmt: skip
            assert types.count("node_completed") == 3, (eid, types)
        assert all(w.poll() is None for w in workers)  # still serving b
        assert f"took over {unfinished} executions" in b.log.read_text()
    finally:
        for w in workers:
            w.kill()
            w.wait()
