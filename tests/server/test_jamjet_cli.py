"""The `jamjet` CLI from PyPI, unmodified, against `tether dev` started in a project folder:
`jamjet run workflow.yaml` (the SDK sends the file name as the workflow id) runs that file,
and `-o json` counts its steps from the node_started events."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from test_server_http import DEADLINE, EXAMPLES, running_engine, wait_terminal

from tether.testing.fake_models import FakeModelServer, FakeReply

JAMJET = Path(sys.executable).parent / "jamjet"


def _jamjet(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JAMJET), *args, "--runtime", url], capture_output=True, text=True,
        timeout=DEADLINE, cwd=cwd, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def test_jamjet_run_a_file_in_the_engines_folder_runs_it_and_counts_its_steps(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(EXAMPLES / "counter.yaml", project / "workflow.yaml")
    with running_engine(tmp_path, cwd=project) as engine:
        done = _jamjet(engine.url, "run", "workflow.yaml", "-i", '{"n": 1}', "-o", "json",
                       cwd=project)  # fmt: skip
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["final_state"]["status"] == "completed"
        assert out["steps_executed"] == 3  # a node_started per step
        outside = _jamjet(engine.url, "run", "../../etc/x.yaml", cwd=project)
        assert outside.returncode != 0
        refused = httpx.post(
            f"{engine.url}/executions", json={"workflow_id": "../../etc/x.yaml", "input": {}}
        )
        assert refused.status_code == 422 and "outside the engine's folder" in refused.text
        for name in ("nope.yaml", "a\u0000b.yaml", "x" * 5000 + ".yaml"):
            missing = httpx.post(f"{engine.url}/executions", json={"workflow_id": name})
            assert missing.status_code == 404, (name[:20], missing.text)
        assert str(project) not in refused.text  # the engine's folder is not shown


def _template(name: str, into: Path) -> Path:
    templates = pytest.importorskip("jamjet.templates")
    for path, text in templates.render_template(name, "demo").items():
        (into / path).parent.mkdir(parents=True, exist_ok=True)
        (into / path).write_text(text)
    return into


def test_jamjet_init_model_templates_run_with_jamjet_run_against_the_fake_provider(
    tmp_path: Path,
) -> None:
    """hello-agent as `jamjet init` writes it, run by `jamjet run workflow.yaml`; the
    approval-workflow template through its event wait and branch to the approved path."""
    hello = _template("hello-agent", tmp_path / "hello")
    approval = _template("approval-workflow", tmp_path / "approval")
    for engine_dir in ("e1", "e2"):
        (tmp_path / engine_dir).mkdir()
    script = [FakeReply("Tether is a durable runtime."), FakeReply("Plan: 1. ..."),
              FakeReply("Done.")]  # fmt: skip
    with FakeModelServer(script, api_key="k") as models:
        with running_engine(tmp_path / "e1", models.env("k"), cwd=hello) as engine:
            done = _jamjet(engine.url, "run", "workflow.yaml", "-i", '{"query": "What?"}',
                           "-o", "json", cwd=hello)  # fmt: skip
            assert done.returncode == 0, done.stderr
            final = json.loads(done.stdout)["final_state"]
            assert final["status"] == "completed"
            assert final["output"]["answer"] == "Tether is a durable runtime."
        with running_engine(tmp_path / "e2", models.env("k"), cwd=approval) as engine:
            started = httpx.post(
                f"{engine.url}/executions",
                json={"workflow_id": "workflow.yaml", "input": {"task": "rotate keys"}},
            ).json()
            eid = started["execution_id"]
            # An event that comes before its wait is kept until the run gets there.
            sent = httpx.post(
                f"{engine.url}/executions/{eid}/external-event",
                json={"correlation_key": "human_approved", "payload": {"approved": True}},
            )
            assert sent.status_code == 200, sent.text
            view = wait_terminal(httpx.Client(base_url=engine.url), eid)
            assert view["status"] == "completed", view
            assert view["current_state"]["result"] == "Done."
    assert [r.body["model"] for r in models.requests] == [
        "claude-haiku-4-5-20251001", "claude-sonnet-4-6", "claude-sonnet-4-6",
    ]  # fmt: skip
