"""The YAML compiler: every node kind, every spelling, and errors that name file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tether.ir import (
    END,
    A2aTaskKind,
    AgentKind,
    BranchCase,
    BranchKind,
    ConditionKind,
    EndKind,
    EvalKind,
    HttpKind,
    HumanApprovalKind,
    JoinKind,
    McpToolKind,
    ModelKind,
    ParallelKind,
    PythonFnKind,
    RetryPolicy,
    StateField,
    ToolKind,
    WaitKind,
    Workflow,
    WorkflowError,
    WorkflowInvalid,
    WorkflowSyntaxError,
    compile_yaml_file,
    compile_yaml_text,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEADER = "workflow: {id: w, version: '1'}\n"


def compile_(body: str, validate: bool = True) -> Workflow:
    return compile_yaml_text(textwrap.dedent(body), "flow.yaml", validate=validate)


def one_node(spec: str) -> Workflow:
    """A workflow with a single node ``x`` written as a YAML flow mapping."""
    return compile_(HEADER + f"nodes:\n  x: {spec}\n", validate=False)


def error_of(body: str) -> str:
    with pytest.raises(WorkflowError) as info:
        compile_(body)
    return str(info.value)


def edges(wf: Workflow) -> list[tuple[str, str, str | None]]:
    return [(e.from_, e.to, e.condition) for e in wf.edges]


# -- node kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("{type: tool, tool: add_one}", ToolKind(tool_ref="add_one")),
        ("{type: tool, tool_ref: add_one}", ToolKind(tool_ref="add_one")),
        ("{tool: add_one}", ToolKind(tool_ref="add_one")),  # type defaults to tool
        ("{type: tool}", ToolKind(tool_ref="x")),  # the SDK's default tool_ref: the node id
        (
            "{type: tool, server: s, tool: t, arguments: {q: $q}}",
            McpToolKind(server="s", tool="t", input_mapping={"q": "$q"}),
        ),
        ("{type: python_fn, module: m, function: f}", PythonFnKind(module="m", function="f")),
        ("{type: mcp_tool, server: s, tool: t}", McpToolKind(server="s", tool="t")),
        (
            "{type: model, model: gpt, prompt: hi, system: be brief}",
            ModelKind(model_ref="gpt", prompt="hi", system_prompt="be brief"),
        ),
        ("{type: model}", ModelKind()),
        (
            "{type: http, url: 'http://x', method: POST, headers: {a: b}, body: {k: 1}}",
            HttpKind(url="http://x", method="POST", headers={"a": "b"}, body={"k": 1}),
        ),
        ("{type: wait, duration: 5m}", WaitKind(duration_secs=300.0)),
        ("{type: wait, event: approved}", WaitKind(correlation_key="approved")),
        ("{type: wait, until: '2030-01-01T00:00:00Z'}", WaitKind(until="2030-01-01T00:00:00Z")),
        (
            "{type: human_approval, description: ok, timeout: 1h}",
            HumanApprovalKind(description="ok", timeout_secs=3600),
        ),
        (
            "{type: eval, scorers: [{type: latency}], on_fail: retry, max_retries: 2}",
            EvalKind(scorers=[{"type": "latency"}], on_fail="retry", max_retries=2),
        ),
        ("{type: agent, agent: helper}", AgentKind(agent_ref="helper")),
        (
            "{type: a2a_task, remote_agent: r, skill: s, stream: true, timeout: 10}",
            A2aTaskKind(remote_agent="r", skill="s", stream=True, timeout_secs=10),
        ),
        ("{type: condition, next: [{to: end, when: 'n > 1'}, end]}", ConditionKind()),
        ("{type: end, output: n}", EndKind(output="n")),
    ],
)
def test_every_work_kind(spec: str, kind: object) -> None:
    assert one_node(spec).nodes["x"].kind == kind


def test_node_fields_input_output_retry_timeout() -> None:
    wf = one_node(
        "{tool: t, input: {n: $n, k: 3}, output_key: n, timeout: 1.5s, "
        "retry: {max_attempts: 4, backoff: constant, delay_ms: 200}, "
        "description: d, labels: {a: 1}}"
    )
    node = wf.nodes["x"]
    assert node.input == {"n": "$n", "k": 3}
    assert node.kind == ToolKind(tool_ref="t", input_mapping={"n": "$n", "k": 3})
    assert node.output_key == "n" and node.state_key == "n"
    assert node.node_timeout_secs == 1.5
    assert node.retry_policy == RetryPolicy(
        max_attempts=4, backoff_multiplier=1.0, backoff_initial_secs=0.2
    )
    assert (node.description, node.labels) == ("d", {"a": "1"})


def test_control_kinds_and_routes() -> None:
    wf = compile_(
        """
        workflow: {id: w, start: pick}
        nodes:
          pick:
            type: branch
            cases: [{when: "n > 3", to: fan}]
            default: fan
          fan: {type: parallel, branches: [a, b]}
          a: {tool: t, next: merge}
          b: {tool: t, next: [{to: merge}]}
          merge: {type: join, wait_for: [a, b], next: done}
          done: {type: end}
        """
    )
    assert wf.nodes["pick"].kind == BranchKind(
        cases=[BranchCase(to="fan", when="n > 3")], default="fan"
    )
    assert wf.nodes["fan"].kind == ParallelKind(branches=["a", "b"])
    assert wf.nodes["merge"].kind == JoinKind(wait_for=["a", "b"])
    assert edges(wf) == [("a", "merge", None), ("b", "merge", None), ("merge", "done", None)]


def test_jamjet_docs_spellings() -> None:
    wf = compile_(
        """
        workflow:
          id: w
          version: 0.2.0
          state_schema: {query: str, results: "list[str]", score: float}
        nodes:
          route:
            type: branch
            conditions:
              - if: "state.score >= 0.9"
                next: gate
            default: gate
          gate:
            type: condition
            expression: "state.score > 0.5"
            if_true: end
            if_false: approve
          approve: {type: human_approval, fallback: end, next: end}
        """
    )
    assert wf.version == "0.2.0"
    assert wf.typed_schema() == {
        "query": StateField(type="string"),
        "results": StateField(type="array"),
        "score": StateField(type="number"),
    }
    assert wf.nodes["route"].kind == BranchKind(
        cases=[BranchCase(to="gate", when="state.score >= 0.9")], default="gate"
    )
    assert edges(wf)[:2] == [("gate", END, "state.score > 0.5"), ("gate", "approve", None)]
    assert wf.nodes["approve"].kind == HumanApprovalKind(
        description="Approval required for approve", fallback_node="end"
    )


def test_routes_default_to_end_and_accept_lists() -> None:
    wf = compile_(
        HEADER
        + textwrap.dedent(
            """
        nodes:
          a: {tool: t, next: [{to: b, when: "x == 1"}, {to: c, condition: "x == 2"}, b]}
          b: {tool: t}
          c: {tool: t, next: end}
        """
        )
    )
    assert edges(wf) == [
        ("a", "b", "x == 1"),
        ("a", "c", "x == 2"),
        ("a", "b", None),
        ("b", END, None),
        ("c", END, None),
    ]


def test_workflow_header_and_top_level_sections() -> None:
    wf = compile_(
        """
        workflow:
          id: w
          version: 1.10
          name: The W
          description: does w
          start_node: b
          labels: {team: x}
          state_schema:
            type: object
            properties: {n: {type: integer, default: 1}}
            required: [n]
        retry_policies:
          slow: {max_attempts: 5, delay: 2s, max_delay: 1m}
        timeouts: {workflow_timeout: 1h, heartbeat_interval: 10}
        models: {default_chat: {provider: x}}
        nodes:
          a: {tool: t, retry_policy: slow}
          b: {tool: t, next: a}
        """
    )
    assert (wf.workflow_id, wf.version, wf.start_node) == ("w", "1.10", "b")
    assert (wf.name, wf.description, wf.labels) == ("The W", "does w", {"team": "x"})
    assert wf.typed_schema() == {"n": StateField(type="integer", default=1, required=True)}
    assert wf.retry_policies["slow"] == RetryPolicy(
        max_attempts=5, backoff_initial_secs=2.0, backoff_max_secs=60.0
    )
    assert wf.timeouts.workflow_timeout == 3600 and wf.timeouts.heartbeat_interval == 10
    assert wf.nodes["a"].retry_policy == "slow"


def test_locations_are_recorded() -> None:
    wf = compile_(HEADER + "nodes:\n  a:\n    tool: t\n    next: [{to: end, when: 'x == 1'}]\n")
    assert str(wf.locations["nodes.a"]) == "flow.yaml:3"
    assert wf.locations["nodes.a.kind.tool_ref"].line == 4
    assert wf.locations["nodes.a.tool"].line == 4
    assert wf.locations["edges.0.condition"].line == 5


@pytest.mark.parametrize("name", ["counter", "branching"])
def test_examples_compile(name: str) -> None:
    wf = compile_yaml_file(EXAMPLES / f"{name}.yaml")
    assert wf.workflow_id == name


def test_counter_example_shape() -> None:
    wf = compile_yaml_file(EXAMPLES / "counter.yaml")
    assert [n.kind for n in wf.nodes.values()] == [
        ToolKind(tool_ref="add_one", input_mapping={"n": "$n"})
    ] + [ToolKind(tool_ref="add_one")] * 2
    assert {n.state_key for n in wf.nodes.values()} == {"n"}
    assert edges(wf)[-1] == ("third", END, None)


# -- errors -----------------------------------------------------------------------------------


def test_invalid_example_names_file_and_line() -> None:
    with pytest.raises(WorkflowSyntaxError) as info:
        compile_yaml_file(EXAMPLES / "invalid.yaml")
    assert str(info.value).startswith(f"{EXAMPLES / 'invalid.yaml'}:15:5: node 'fetch'")
    assert "unknown node type 'tol'" in str(info.value)
    assert info.value.location is not None and info.value.location.line == 15


@pytest.mark.parametrize(
    ("body", "where", "fragment"),
    [
        (
            HEADER + "nodes:\n  a: {type: tol}\n",
            "flow.yaml:3",
            "unknown node type 'tol'; did you mean 'tool'?",
        ),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n    nxt: b\n",
            "flow.yaml:5",
            "unknown key for a tool node 'nxt'; did you mean 'next'?",
        ),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n    next: 3\n",
            "flow.yaml:5",
            "'next' must be a node name or a list",
        ),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n    next: [{to: b, wen: x}]\n",
            "flow.yaml:5",
            "unknown route field 'wen'",
        ),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n    timeout: soon\n",
            "flow.yaml:5",
            "invalid duration 'soon'",
        ),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n    retry: {tries: 3}\n",
            "flow.yaml:5",
            "unknown retry field 'tries'",
        ),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n    retry: {max_attempts: lots}\n",
            "flow.yaml:5",
            "Expected `int`, got `str`",
        ),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n    retry: {backoff: linear}\n",
            "flow.yaml:5",
            "use exponential or constant",
        ),
        (
            HEADER + "nodes:\n  a: {tool: t, retry: {}, retry_policy: x}\n",
            "flow.yaml:3",
            "either 'retry' or 'retry_policy'",
        ),
        (HEADER + "nodes:\n  a: {type: branch}\n", "flow.yaml:3", "needs 'cases' or a 'default'"),
        (
            HEADER + "nodes:\n  a: {type: branch, cases: [{when: x}]}\n",
            "flow.yaml:3",
            "a case needs 'to'",
        ),
        (
            HEADER + "nodes:\n  a: {type: branch, default: b, next: c}\n",
            "flow.yaml:3",
            "'next' is not used here",
        ),
        (
            HEADER + "nodes:\n  a: {type: parallel, branches: [b], next: c}\n",
            "flow.yaml:3",
            "end each branch",
        ),
        (
            HEADER + "nodes:\n  a: {type: parallel, branches: 3}\n",
            "flow.yaml:3",
            "must be a list of node names",
        ),
        (HEADER + "nodes:\n  a: {type: python_fn, module: m}\n", "flow.yaml:3", "needs 'function'"),
        (HEADER + "nodes:\n  a: {type: http}\n", "flow.yaml:3", "needs 'url'"),
        (
            HEADER + "nodes:\n  a: {type: wait}\n",
            "flow.yaml:3",
            "needs 'duration', 'until' or 'event'",
        ),
        (
            HEADER + "nodes:\n  a: {type: condition, expression: 'x'}\n",
            "flow.yaml:3",
            "needs 'if_true'",
        ),
        (HEADER + "nodes:\n  a: {tool: [1]}\n", "flow.yaml:3", "tool must be a string"),
        (HEADER + "nodes:\n  a: {tool: t, input: [1]}\n", "flow.yaml:3", "input must be a mapping"),
        (HEADER + "nodes:\n  a:\n", "flow.yaml:3", "node 'a' must be a mapping, got nothing"),
        (HEADER + "nodes: []\n", "flow.yaml:2", "'nodes' (node id -> node) must be a mapping"),
        (HEADER + "nodes: {}\n", "flow.yaml:2", "no nodes"),
        (HEADER, "flow.yaml:1", "missing the 'nodes' section"),
        ("nodes: {a: {tool: t}}\n", "flow.yaml:1", "missing the 'workflow' section"),
        (
            "workflow: {version: '1'}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:1",
            "the workflow needs 'id'",
        ),
        (
            "workflow: {id: w, strat: a}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:1",
            "unknown workflow key 'strat'; did you mean 'start'?",
        ),
        (
            "workflow: {id: w, start: [a]}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:1",
            "start must be a node name",
        ),
        (
            HEADER + "nodez: {}\n",
            "flow.yaml:2",
            "unknown top-level key 'nodez'; did you mean 'nodes'?",
        ),
        (
            HEADER + "timeouts: {node_timeout: forever}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:2",
            "timeouts.node_timeout: invalid duration",
        ),
        (
            HEADER + "timeouts: {per_node: 3}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:2",
            "unknown timeout 'per_node'",
        ),
        (
            HEADER + "retry_policies: {p: {max_attempts: x}}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:2",
            "retry policy 'p'",
        ),
        (
            "workflow: {id: w, state_schema: [n]}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:1",
            "state_schema must be a mapping",
        ),
        (
            "workflow: {id: w, state_schema: {n: {typ: integer}}}\nnodes: {a: {tool: t}}\n",
            "flow.yaml:1",
            "unknown field 'typ'",
        ),
        ("agent: {id: a, strategy: react}\n", "flow.yaml:1", "agent-first YAML"),
        ("- a\n- b\n", "flow.yaml:1", "the top level must be a mapping"),
        ("", "flow.yaml:1", "the document is empty"),
    ],
)
def test_structural_errors_name_file_and_line(body: str, where: str, fragment: str) -> None:
    message = error_of(body)
    assert message.startswith(where + ":"), message
    assert fragment in message, message


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        (HEADER + "nodes:\n  a:\n    tool: t\n\tnext: b\n", 5, "tabs"),
        (HEADER + "nodes:\n  a:\n    tool: t\n   next: b\n", 5, "YAML syntax error"),
        (
            HEADER + "nodes:\n  a:\n    tool: t\n      next: b\n",
            5,
            "mapping values are not allowed",
        ),
        (HEADER + "nodes:\n  a: {tool: t\n", 4, "YAML syntax error"),
        (HEADER + "nodes:\n  a: {tool: 'oops}\n", 4, "YAML syntax error"),
        (
            HEADER + "nodes:\n  a: {tool: t}\n  a: {tool: u}\n",
            4,
            "duplicate key 'a' (first defined at line 3)",
        ),
        (HEADER + "nodes: {a: {tool: t}}\n---\nworkflow: {}\n", 3, "expected a single document"),
        (HEADER + "nodes:\n  a: {tool: t, next: *nope}\n", 3, "undefined alias"),
        (HEADER + "nodes:\n  ? [a, b]\n  : {tool: t}\n", 3, "mapping keys must be plain names"),
    ],
)
def test_malformed_yaml_names_file_and_line(body: str, line: int, fragment: str) -> None:
    with pytest.raises(WorkflowSyntaxError) as info:
        compile_(body)
    assert str(info.value).startswith(f"flow.yaml:{line}:"), str(info.value)
    assert fragment in str(info.value)


def test_graph_errors_come_from_validation_with_lines() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        compile_(HEADER + "nodes:\n  a:\n    tool: t\n    next: [{to: b, when: 'x >'}]\n")
    lines = str(info.value).splitlines()
    assert any(line.startswith("flow.yaml:5:") and "unknown node 'b'" in line for line in lines)
    assert any(
        line.startswith("flow.yaml:5:") and "invalid condition 'x >'" in line for line in lines
    )


def test_merge_keys_and_anchors() -> None:
    wf = compile_(
        HEADER
        + textwrap.dedent(
            """
        defaults: &d {type: tool, tool: t}
        nodes:
          a: {<<: *d, next: b}
          b: *d
        """
        ).replace("defaults:", "models:")
    )
    assert wf.nodes["a"].kind == ToolKind(tool_ref="t") == wf.nodes["b"].kind


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkflowSyntaxError, match="cannot read the file"):
        compile_yaml_file(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"workflow: {id: \xe9}\n")
    with pytest.raises(WorkflowSyntaxError, match="not UTF-8"):
        compile_yaml_file(bad)
