"""A strategy agent on ``tether dev``: ``tether run examples/strategy_reflection.yaml`` against
the fake model server halts on the cost guard's projection with the best answer so far (the
seeds' "$0.41 + projected $0.18 > cap $0.50 -> HALT, returning best-so-far (0.81)"); the
events view shows its rounds, critiques and the ``limit_reached`` record, the dashboard's
timeline its model calls; ``tether inspect`` prints them; ``jamjet inspect``'s strategy
section finds the strategy in the node labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jamjet.cli.main import _print_strategy_section
from rich.console import Console
from test_server_http import DEADLINE, EXAMPLES, Engine, running_engine

from tether.testing.fake_models import FakeModelServer, FakeReply

KEY = "test-key"


@pytest.fixture
def models() -> Iterator[FakeModelServer]:
    script = [
        FakeReply("Tea is leaves in hot water.", input_tokens=10, output_tokens=1000),
        FakeReply(json.dumps({"score": 0.81, "passed": False, "gaps": "why it is hot"}),
                  input_tokens=10, output_tokens=1333),
    ]  # fmt: skip
    with FakeModelServer(script, api_key=KEY) as server:
        yield server


@pytest.fixture
def engine(tmp_path: Path, models: FakeModelServer) -> Iterator[Engine]:
    with running_engine(tmp_path, models.env(KEY)) as e:
        yield e


def cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        env={**os.environ, "TETHER_ENGINE_URL": engine.url},
        capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip


def test_a_strategy_run_on_tether_dev_halts_on_projected_cost_and_shows_its_events(
    engine: Engine, models: FakeModelServer
) -> None:
    ran = cli(engine, "run", str(EXAMPLES / "strategy_reflection.yaml"), "-i",
              '{"topic": "tea"}', "--json")  # fmt: skip
    assert ran.returncode == 1, ran.stderr  # limit_exceeded is not a success
    view = json.loads(ran.stdout)
    assert view["status"] == "limit_exceeded"
    halt = "$0.41 + projected $0.18 > cap $0.50 -> HALT, returning best-so-far (0.81)"
    assert halt in view["error"]
    assert len(models.requests) == 2  # the revision the projection stopped was never sent
    eid = view["execution_id"]
    state = httpx.get(f"{engine.url}/executions/{eid}", timeout=DEADLINE).json()["current_state"]
    assert state["result"] == "Tea is leaves in hot water."  # the best so far
    events = httpx.get(f"{engine.url}/executions/{eid}/events", timeout=DEADLINE).json()["events"]
    strategy = [
        (e["kind"]["type"], e["node_id"]) for e in events
        if e["kind"]["type"] in ("strategy_iteration_started", "tool_called", "critique",
                                 "limit_reached")
    ]  # fmt: skip
    assert strategy == [
        ("strategy_iteration_started", "__execute__"),
        ("critique", "__reflect_0__"),
        ("limit_reached", "__revise_0__"),
    ]
    critique = next(e for e in events if e["kind"]["type"] == "critique")
    assert critique["derived"] is True
    assert (critique["kind"]["score"], critique["kind"]["passed"]) == (0.81, False)
    limit = next(e for e in events if e["kind"]["type"] == "limit_reached")
    assert "derived" not in limit  # a journal record
    assert limit["kind"]["best"] == "Tea is leaves in hot water."
    done = [e for e in events if e["kind"]["type"] == "node_completed" and e["kind"]["dispatch"]]
    assert done[0]["kind"]["labels"]["jamjet.strategy.event"] == "iteration_started"
    timeline = httpx.get(f"{engine.url}/views/executions/{eid}/timeline", timeout=DEADLINE)
    bars = [row["node_id"] for row in timeline.json()["rows"]]  # the dashboard's run view
    assert bars[:2] == ["__execute__", "__reflect_0__"]
    shown = cli(engine, "inspect", eid)
    assert shown.returncode == 0, shown.stderr
    assert "__execute__      ↻ initial_execution round 0" in shown.stdout
    assert "__reflect_0__    ✎ critique score=0.81 passed=false" in shown.stdout
    assert (
        f"__revise_0__     ! limit_reached cost_usd: strategy reflection at '__revise_0__': {halt}"
        in shown.stdout
    )
    watched = cli(engine, "watch", eid)  # as `tether run` followed it
    assert "▸ [__reflect_0__] ✎ critique score=0.81 passed=false" in watched.stdout
    assert "▸ [__revise_0__] ! limit_reached cost_usd: strategy reflection" in watched.stdout
    # `jamjet inspect` itself stops before its strategy section on any run with events (it
    # calls .startswith on each event's kind, a dict): its section is called here directly.
    console = Console(record=True, width=200)
    view = httpx.get(f"{engine.url}/executions/{eid}", timeout=DEADLINE).json()
    _print_strategy_section(console, view, events)
    printed = console.export_text()
    assert "Strategy: reflection" in printed and "Iterations: 1" in printed
    assert "0.81" in printed  # its verdicts table
