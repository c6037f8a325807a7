"""``TETHER_DATABASE_URL=postgresql://... tether dev``: the engine journals to Postgres (the
backend follows the URL), and a run started over HTTP is in its tables afterwards."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_server_http import EXAMPLES, ir_of, running_engine, wait_terminal

psycopg = pytest.importorskip("psycopg", reason="the Postgres driver: pip install -e '.[postgres]'")


def test_tether_dev_runs_on_the_postgres_url_it_is_given(tmp_path: Path, postgres_url: str) -> None:
    with running_engine(tmp_path, env={"TETHER_DATABASE_URL": postgres_url}) as engine:
        with httpx.Client(base_url=engine.url) as c:
            c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).raise_for_status()
            started = c.post("/executions", json={"workflow_id": "counter", "input": {"n": 0}})
            eid = started.json()["execution_id"]
            view = wait_terminal(c, eid)
        assert (view["status"], view["current_state"]) == ("completed", {"n": 3})
        assert engine.stop() == 0
    assert "journal postgresql://" in engine.log.read_text()
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT status, last_seq FROM tether_executions WHERE execution_id = %s", (eid,)
        ).fetchone()
    assert row is not None and row[0] == "completed" and row[1] >= 4
