"""The two `jamjet init` templates that cannot run unmodified, with the changes the README's
jamjet section names, run by the real `jamjet run workflow.yaml` against `tether dev` and the
fake model server. What stops them unmodified is in the SDK's own source (checked here too):

* multi-agent-review: ``render_template`` calls ``str.format`` on the template, whose Jinja
  ``{%- if %}``/``{%- endif %}`` are not doubled, so `jamjet init` raises KeyError and writes
  nothing. Written by hand, Tether still cannot run it: its templates have no statements
  (``{% if %}``), and its route condition calls ``int(...)`` and ``.split(...)``, which
  Tether's condition language does not.
* rag-assistant: ``extract_path`` is a template filter defined nowhere in the SDK.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from test_server_http import DEADLINE, running_engine

from tether.testing.fake_models import FakeModelServer, FakeReply

templates = pytest.importorskip("jamjet.templates")

JAMJET = Path(sys.executable).parent / "jamjet"
#: The route of multi-agent-review, and what the README says to write instead.
ROUTE = "int(state.critique.split('SCORE:')[1].split()[0]) >= 4"
ROUTE_HERE = "'SCORE: 4' in state.critique or 'SCORE: 5' in state.critique"

FILES_SERVER = '''
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

server: MCPServer[Any] = MCPServer("files", log_level="WARNING")


@server.tool()
def read_file(path: str) -> str:
    """The text of a file under this folder."""
    return Path(path).read_text()


server.run("stdio")
'''


def _jamjet_run(url: str, project: Path, given: dict[str, object]) -> dict[str, object]:
    done = subprocess.run(
        [str(JAMJET), "run", "workflow.yaml", "-i", json.dumps(given), "-o", "json",
         "--runtime", url],
        capture_output=True, text=True, timeout=DEADLINE, cwd=project,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    final: dict[str, object] = json.loads(done.stdout)["final_state"]
    return final


def test_the_sdk_cannot_write_multi_agent_review_and_defines_no_extract_path() -> None:
    with pytest.raises(KeyError, match="if state"):
        templates.render_template("multi-agent-review", "demo")
    sdk = Path(inspect.getfile(templates)).parents[1]
    users = [p for p in sdk.rglob("*.py") if "extract_path" in p.read_text(errors="replace")]
    assert users == [Path(inspect.getfile(templates))]  # only the template names it


IF_BLOCK = re.compile(r"\n *\{%- if state\.critique %\}.*\{%- endif %\}", re.S)
#: What the README says to write instead of the {% if %} block (no statements here).
CRITIQUE_LINE = "\n      Previous critique, if any: {{ state.critique | default('none yet') }}"


def test_multi_agent_review_runs_with_its_braces_doubled_and_two_changes(tmp_path: Path) -> None:
    raw = templates.get_template("multi-agent-review")["workflow.yaml"]
    doubled = raw.replace("{%- if state.critique %}", "{{%- if state.critique %}}")
    written = doubled.replace("{%- endif %}", "{{%- endif %}}").format(name="review")
    fixed = IF_BLOCK.sub(lambda _: CRITIQUE_LINE, written).replace(ROUTE, ROUTE_HERE)
    assert fixed != written and ROUTE_HERE in fixed
    project = tmp_path / "review"
    project.mkdir()
    (project / "workflow.yaml").write_text(fixed)
    (tmp_path / "engine").mkdir()
    script = [FakeReply("Draft one."), FakeReply("SCORE: 2\nCRITIQUE: Say what it does."),
              FakeReply("Draft two."), FakeReply("SCORE: 5\nCRITIQUE: Good."),
              FakeReply("Final draft.")]  # fmt: skip
    with (
        FakeModelServer(script, api_key="k") as models,
        running_engine(tmp_path / "engine", models.env("k"), cwd=project) as engine,
    ):
        # As `jamjet init` would write it were its braces doubled: refused, saying why.
        (project / "as_written.yaml").write_text(written.replace(ROUTE, ROUTE_HERE))
        refused = httpx.post(f"{engine.url}/executions", json={"workflow_id": "as_written.yaml"})
        assert refused.status_code == 422, refused.text
        assert "statements ('{% ... %}') are not supported" in refused.text
        # Nothing in the template sets `attempts`, which its route compares: given here.
        final = _jamjet_run(engine.url, project, {"topic": "Tether 1.0", "attempts": 0})
    assert final["status"] == "completed", json.dumps(final)[:3000]
    assert final["output"]["final"] == "Final draft."  # type: ignore[index]
    prompts = [json.dumps(r.body["messages"]) for r in models.requests]
    assert "Previous critique, if any: none yet" in prompts[0]
    assert "Say what it does." in prompts[2]


def test_rag_assistant_runs_with_the_path_in_its_input(tmp_path: Path) -> None:
    project = tmp_path / "rag"
    for path, text in templates.render_template("rag-assistant", "rag").items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    workflow = (project / "workflow.yaml").read_text()
    workflow = workflow.replace("{{ state.question | extract_path }}", "{{ state.path }}")
    workflow = workflow.replace("    question: str\n", "    question: str\n    path: str\n")
    (project / "workflow.yaml").write_text(workflow)
    # The template's server is `npx -y @modelcontextprotocol/server-filesystem .`, fetched
    # from npm at its first start; the test serves the same `read_file` tool locally.
    (project / "files_server.py").write_text(FILES_SERVER)
    toml = (project / "jamjet.toml").read_text()
    toml = toml.replace('command = "npx"', f"command = {json.dumps(sys.executable)}")
    toml = toml.replace('args = ["-y", "@modelcontextprotocol/server-filesystem", "."]',
                        'args = ["files_server.py"]')  # fmt: skip
    (project / "jamjet.toml").write_text(toml)
    (project / "NOTES.md").write_text("Setup: run `make`.\n")
    (tmp_path / "engine").mkdir()
    given = {"question": "How do I set up?", "path": "NOTES.md"}
    with (
        FakeModelServer([FakeReply("Run make.")], api_key="k") as models,
        running_engine(tmp_path / "engine", models.env("k"), cwd=project) as engine,
    ):
        final = _jamjet_run(engine.url, project, given)
    assert final["status"] == "completed", json.dumps(final)[:3000]
    assert final["output"]["answer"] == "Run make."  # type: ignore[index]
    assert "Setup: run `make`." in json.dumps(models.requests[0].body["messages"])
