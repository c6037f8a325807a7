"""Importing the IR dicts that the real ``jamjet`` SDK produces, and our own IR."""

from __future__ import annotations

import textwrap
from typing import Any

import msgspec
import pytest

from tether.ir import (
    END,
    ConditionKind,
    Edge,
    EndKind,
    HumanApprovalKind,
    LimitExceededKind,
    ModelKind,
    Node,
    PythonFnKind,
    RetryPolicy,
    StateField,
    Timeouts,
    ToolKind,
    Workflow,
    WorkflowInvalid,
    check,
    compile_submitted_ir,
    compile_yaml_file,
    compile_yaml_text,
    encode_workflow,
    successors,
    workflow_from_ir,
)
from tether.ir.identity import workflow_digest

jamjet_compiler = pytest.importorskip("jamjet.workflow.ir_compiler")


def sdk_ir(yaml_text: str) -> dict[str, Any]:
    ir: dict[str, Any] = jamjet_compiler.compile_yaml(textwrap.dedent(yaml_text))
    return ir


def edges_of(ir_or_wf: Any) -> list[tuple[str, str, str | None]]:
    return [(e.from_, e.to, e.condition) for e in ir_or_wf.edges]


def test_sdk_yaml_chain_with_conditions() -> None:
    ir = sdk_ir(
        """
        workflow: {id: triage, version: 0.2.0, start: classify}
        retry_policies:
          llm: {max_attempts: 5, backoff: exponential, delay_ms: 200}
        nodes:
          classify:
            type: model
            model: claude
            prompt: "Classify {{ state.ticket }}"
            retry_policy: llm
            timeout: 30s
            next:
              - {to: escalate, when: "state.severity == 'high'"}
              - {to: answer}
          answer: {type: tool, tool_ref: reply, input: {text: $draft}, next: end}
          escalate: {type: human_approval, timeout: 1h, fallback: answer}
        """
    )
    assert ir["state_schema"] == ""  # the SDK's quirk: a string
    wf = workflow_from_ir(ir, source="triage.yaml")
    check(wf)
    assert (wf.workflow_id, wf.version, wf.start_node) == ("triage", "0.2.0", "classify")
    assert wf.state_schema == ""
    assert wf.nodes["classify"].kind == ModelKind(
        model_ref="claude", prompt_ref="Classify {{ state.ticket }}"
    )
    assert wf.nodes["classify"].retry_policy == "llm"
    assert wf.nodes["classify"].node_timeout_secs == 30
    assert wf.retry_policies["llm"] == RetryPolicy(
        max_attempts=5, backoff_multiplier=2.0, backoff_initial_secs=0.2
    )
    answer = wf.nodes["answer"]
    assert answer.kind == ToolKind(tool_ref="reply", input_mapping={"text": "$draft"})
    assert answer.input == {"text": "$draft"}  # copied so the runtime binds from node.input
    assert wf.nodes["escalate"].kind == HumanApprovalKind(
        description="Approval required for escalate", timeout_secs=3600, fallback_node="answer"
    )
    assert edges_of(wf) == [
        ("classify", "escalate", "state.severity == 'high'"),
        ("classify", "answer", None),
        ("answer", END, None),
        ("escalate", END, None),
    ]
    assert wf.timeouts == Timeouts()  # the SDK sends {} when the YAML has none


def test_sdk_yaml_every_supported_kind() -> None:
    ir = sdk_ir(
        """
        workflow: {id: kinds}
        nodes:
          m: {type: model, next: t}
          t: {type: tool, next: mcp}
          mcp: {type: mcp_tool, server: s, tool: x, next: a2a}
          a2a: {type: a2a_task, remote_agent: r, skill: k, timeout: 10s, next: ag}
          ag: {type: agent, agent_ref: helper, next: ev}
          ev: {type: eval, scorers: [{type: latency, threshold_ms: 10}], next: cond}
          cond: {type: condition, next: [{to: end, when: "ok == true"}, end]}
        """
    )
    wf = workflow_from_ir(ir)
    check(wf)
    assert [n.kind.__struct_config__.tag for n in wf.nodes.values()] == [
        "model", "tool", "mcp_tool", "a2a_task", "agent", "eval", "condition",
    ]  # fmt: skip
    assert wf.edges[-2].condition == "ok == true"


def test_sdk_python_workflow_via_compile_to_ir() -> None:
    from jamjet.workflow.types import StepDef, WorkflowDef  # type: ignore[import-untyped]

    async def fetch(state: Any) -> Any:
        return state

    async def decide(state: Any) -> Any:
        return state

    defn = WorkflowDef(
        workflow_id="py",
        version="1.0.0",
        state_schema="app.models.State",
        start_node="fetch",
        steps=[
            StepDef(name="fetch", fn=fetch, timeout="5m", retry_policy=None),
            StepDef(name="decide", fn=decide, human_approval=True, timeout="1h"),
            StepDef(name="write", fn=fetch, model="gpt-4o"),
        ],
    )
    wf = workflow_from_ir(jamjet_compiler.compile_to_ir(defn))
    check(wf)
    assert wf.state_schema == "app.models.State" and wf.typed_schema() == {}
    assert wf.nodes["fetch"].kind == PythonFnKind(
        module=__name__, function="test_sdk_python_workflow_via_compile_to_ir.<locals>.fetch"
    )
    assert wf.nodes["fetch"].node_timeout_secs == 300
    assert isinstance(wf.nodes["decide"].kind, HumanApprovalKind)
    assert wf.nodes["write"].kind == ModelKind(model_ref="gpt-4o", prompt_ref="prompts/write.md")
    assert edges_of(wf) == [
        ("fetch", "decide", None),
        ("decide", "write", None),
        ("write", END, None),
    ]
    assert wf.timeouts.heartbeat_interval == 30


def test_sdk_agent_first_yaml_imports_its_limits_and_limit_node() -> None:
    ir = sdk_ir(
        """
        agent:
          id: researcher
          strategy: plan-and-execute
          goal: research
          model: gpt-4o
          tools: [search]
          limits: {max_iterations: 2, max_cost_usd: 0.5, timeout_seconds: 60}
        """
    )
    wf = workflow_from_ir(ir, source="agent.yaml")
    check(wf)
    assert (wf.workflow_id, wf.version, wf.cost_limit_usd) == ("researcher", "0.1.0", 0.5)
    assert wf.nodes["__limit_exceeded__"].kind == LimitExceededKind("Strategy limit reached")
    assert wf.retry_policies == {"llm_default": RetryPolicy()}  # the SDK's built-in, named
    plan = wf.nodes["__plan__"]
    assert plan.retry_policy == "llm_default" and plan.output_key is None
    assert wf.nodes["__step_0__"].state_key == "__step_0_output__"  # output_schema names it
    assert wf.timeouts.workflow_timeout == 60
    assert successors(wf, "__limit_exceeded__") == []  # it ends the run; its edge is not taken


def _agent_ir(strategy: str, **options: Any) -> dict[str, Any]:
    from jamjet import Agent, tool

    @tool
    async def web_search(query: str) -> str:
        """Search the web."""
        return query

    agent = Agent("writer", model="gpt-4o-mini", tools=[web_search], strategy=strategy, **options)
    ir: dict[str, Any] = agent.compile()
    return ir


@pytest.mark.parametrize("strategy", ["react", "plan-and-execute", "critic", "reflection"])
def test_an_agents_compiled_ir_is_named_by_the_agent_and_validates(strategy: str) -> None:
    ir = _agent_ir(strategy, max_iterations=2, max_cost_usd=0.25)
    assert "workflow_id" not in ir  # Agent.compile() names no workflow
    wf = compile_submitted_ir(ir, "agent")
    assert (wf.workflow_id, wf.version, wf.cost_limit_usd) == ("writer", "0.1.0", 0.25)
    assert wf.nodes["__finalize__"].state_key == "result"
    assert "__limit_exceeded__" in wf.nodes  # unreached where no guard routes to it: allowed
    assert successors(wf, "__limit_exceeded__") == []  # it ends the run; its edge is not taken


def test_an_agents_cost_limit_is_checked_and_an_explicit_workflow_id_wins() -> None:
    ir = _agent_ir("react", max_iterations=1)
    named = workflow_from_ir({**ir, "workflow_id": "mine", "version": "2"})
    assert (named.workflow_id, named.version) == ("mine", "2")
    for bad in (0, -1, "1", True, float("inf")):
        meta = {**ir["strategy_metadata"], "limits": {"max_cost_usd": bad}}
        with pytest.raises(WorkflowInvalid) as info:
            workflow_from_ir({**ir, "strategy_metadata": meta})
        [issue] = info.value.issues
        assert issue.path == "strategy_metadata.limits.max_cost_usd"
        assert "positive number of USD" in issue.message
    nameless = {**ir, "strategy_metadata": {"limits": {}}}
    with pytest.raises(WorkflowInvalid) as info:
        workflow_from_ir(nameless)
    assert [i.path for i in info.value.issues] == ["workflow_id"]


def test_a_limit_node_is_an_end_and_may_stand_unreached() -> None:
    wf = Workflow(
        workflow_id="w", version="1", start_node="m",
        nodes={
            "m": Node(id="m", kind=ModelKind(model_ref="gpt-4o"), output_key="answer"),
            "guard": Node(id="guard", kind=ConditionKind()),
            "stop": Node(id="stop", kind=LimitExceededKind()),
            "k": Node(id="k", kind=ModelKind(model_ref="gpt-4o")),
            "spare": Node(id="spare", kind=LimitExceededKind()),
        },
        edges=[
            Edge(from_="m", to="guard"),
            Edge(from_="guard", to="stop", condition="state.__cost_exceeded__"),
            Edge(from_="guard", to="k"),
            Edge(from_="k", to=END),
        ],
    )  # fmt: skip
    check(wf)  # "stop" needs no way out; "spare" (no guard routes to it) is no mistake
    other = msgspec.structs.replace(wf, nodes={**wf.nodes, "lost": Node(id="lost", kind=EndKind())})
    with pytest.raises(WorkflowInvalid, match="node 'lost' is unreachable"):
        check(other)


def test_a_string_output_schema_names_a_model_nodes_state_key() -> None:
    def model(schema: str | dict[str, Any], key: str | None = None) -> Node:
        return Node(
            id="m", kind=ModelKind(model_ref="gpt-4o", output_schema=schema), output_key=key
        )

    assert model("__critic_0_verdict__").state_key == "__critic_0_verdict__"  # the SDK's form
    assert model("").state_key == "m"
    assert model({"type": "object"}).state_key == "m"  # a JSON schema names no key
    assert model("answer", key="kept").state_key == "kept"


def test_unknown_kinds_and_bad_shapes_are_reported_together() -> None:
    ir = {
        "workflow_id": "w",
        "version": 1,
        "start_node": "a",
        "nodes": {
            "a": {"id": "a", "kind": {"type": "coordinator", "task": "x"}},
            "b": {"id": "b", "kind": {"type": "tool"}},
            "c": {"id": "c"},
            "d": "not a node",
        },
        "edges": [{"from": "a"}],
        "timeouts": {"node_timeout": "soon"},
    }
    with pytest.raises(WorkflowInvalid) as info:
        workflow_from_ir(ir, source="x.json")
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "x.json: nodes.a.kind.type: node 'a': unknown node kind 'coordinator' (Tether runs: "
        "tool, python_fn, mcp_tool, model, http, branch, condition, parallel, join, end, "
        "limit_exceeded, wait, human_approval, eval, agent, a2a_task, run_code, memory_write, "
        "memory_retrieval)"
    )
    assert "missing required field `tool_ref`" in lines[1]
    assert "node 'c': no kind" in lines[2]
    assert "node 'd' must be a mapping" in lines[3]
    assert "missing required field `to`" in lines[4]
    assert "timeouts" in lines[5]


def test_not_a_mapping() -> None:
    with pytest.raises(WorkflowInvalid, match="the IR must be a mapping, got list"):
        workflow_from_ir([], source="x")  # type: ignore[arg-type]


def test_missing_required_keys() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        workflow_from_ir({"version": "1"})
    assert [i.path for i in info.value.issues] == ["workflow_id", "start_node", "nodes"]


def test_json_schema_state_and_extra_keys() -> None:
    ir = {
        "workflow_id": "w",
        "start_node": "a",
        "nodes": {"a": {"id": "a", "kind": {"type": "end"}, "labels": None}},
        "state_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "models": {"x": {}},
        "strategy_metadata": {"k": 1},
        "timeouts": {"workflow_timeout": 60},
    }
    wf = workflow_from_ir(ir)
    assert wf.typed_schema() == {"q": StateField(type="string")}
    assert wf.timeouts == Timeouts(workflow_timeout=60)
    assert wf.version == "0.1.0"


def test_our_own_ir_round_trips(tmp_path: Any) -> None:
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    for name in ("counter", "branching"):
        wf = compile_yaml_file(examples / f"{name}.yaml")
        again = workflow_from_ir(msgspec.json.decode(encode_workflow(wf)))
        assert again == wf
        assert encode_workflow(again) == encode_workflow(wf)


def test_our_own_ir_keeps_models_budget_allowed_tools_mcp_servers_and_cost_limit_I13() -> None:
    text = """
    workflow: {id: research, version: "1"}
    models:
      fast: {provider: openai, model: gpt-4o-mini}
    budget: {max_cost_usd: 2.0}
    allowed_tools: [search]
    mcp_servers:
      files: {command: [python, server.py]}
    nodes:
      plan: {type: model, model: fast, prompt: "Plan {{ state.q }}", output_key: plan, next: end}
    """
    compiled = compile_yaml_text(textwrap.dedent(text), "r.yaml")
    wf = msgspec.structs.replace(compiled, cost_limit_usd=0.5)
    assert wf.models and wf.budget and wf.allowed_tools and wf.mcp_servers
    again = workflow_from_ir(msgspec.json.decode(encode_workflow(wf)))
    assert again == wf  # what `tether run` posts is what the server registers
    assert workflow_digest(again) == workflow_digest(wf)
