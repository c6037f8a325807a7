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
from test_server_http import DEADLINE, EXAMPLES, running_engine

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
        missing = httpx.post(f"{engine.url}/executions", json={"workflow_id": "nope.yaml"})
        assert missing.status_code == 404
