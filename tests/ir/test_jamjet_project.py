"""A jamjet project's jamjet.toml beside a workflow file gives its MCP servers, as `jamjet run`
reads them; the workflow's own mcp_servers come first; a bad file is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.ir import compile_yaml_file
from tether.ir.errors import WorkflowSyntaxError
from tether.ir.identity import workflow_digest

FLOW = """
workflow: {id: demo, version: "1"}
{extra}
nodes:
  read: {type: tool, server: filesystem, tool: read_file, arguments: {path: "{{ state.path }}"},
         output_key: text, next: end}
"""

TOML = """
[project]
name = "demo"

[[mcp_servers]]
name = "filesystem"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "."]
env = { ROOT = "${ROOT}" }

[[mcp_servers]]
name = "remote"
url = "http://127.0.0.1:9/mcp"
"""


def test_the_projects_servers_join_the_workflows(tmp_path: Path) -> None:
    (tmp_path / "jamjet.toml").write_text(TOML)
    (tmp_path / "workflow.yaml").write_text(FLOW.replace("{extra}", ""))
    wf = compile_yaml_file(tmp_path / "workflow.yaml")
    assert wf.mcp_servers == {  # only the server it names: 'remote' it never uses
        "filesystem": {
            "command": ["npx", "-y", "@modelcontextprotocol/server-filesystem", "."],
            "env": {"ROOT": "${ROOT}"},
        },
    }


def test_the_workflows_own_server_wins_and_no_file_changes_nothing(tmp_path: Path) -> None:
    own = 'mcp_servers: {filesystem: {command: ["my-fs"]}}'
    (tmp_path / "workflow.yaml").write_text(FLOW.replace("{extra}", own))
    assert compile_yaml_file(tmp_path / "workflow.yaml").mcp_servers == {
        "filesystem": {"command": ["my-fs"]}
    }
    (tmp_path / "jamjet.toml").write_text(TOML)
    servers = compile_yaml_file(tmp_path / "workflow.yaml").mcp_servers
    assert servers == {"filesystem": {"command": ["my-fs"]}}


def test_a_workflow_naming_no_project_server_never_reads_the_file_I13(tmp_path: Path) -> None:
    """Its identity cannot depend on a file it does not use, nor a broken one refuse it."""
    (tmp_path / "jamjet.toml").write_text("[[mcp_servers]\n")  # broken
    (tmp_path / "counter.yaml").write_text(
        'workflow: {id: c, version: "1"}\nnodes:\n  a: {type: tool, tool: add_one, next: end}\n'
    )
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    (elsewhere / "counter.yaml").write_text((tmp_path / "counter.yaml").read_text())
    here, there = (compile_yaml_file(p / "counter.yaml") for p in (tmp_path, elsewhere))
    assert workflow_digest(here) == workflow_digest(there)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("[[mcp_servers]]\ncommand = 'x'\n", "needs a name"),
        ("[[mcp_servers]]\nname = 'a'\n", "give a command or a url"),
        ("[[mcp_servers]]\nname = 'a'\ncommand = 'x'\nport = 1\n", "unknown key 'port'"),
        ("[[mcp_servers]\n", "jamjet.toml"),
    ],
)
def test_a_bad_project_file_names_itself_and_the_problem(
    tmp_path: Path, toml: str, problem: str
) -> None:
    (tmp_path / "jamjet.toml").write_text(toml)
    (tmp_path / "workflow.yaml").write_text(FLOW.replace("{extra}", ""))
    with pytest.raises(WorkflowSyntaxError, match=problem):
        compile_yaml_file(tmp_path / "workflow.yaml")
