"""Randomly generated valid graphs pass ``check`` and survive encode/decode and IR import."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.ir import (
    END,
    A2aTaskKind,
    AgentKind,
    BranchCase,
    BranchKind,
    Edge,
    EndKind,
    EvalKind,
    HttpKind,
    HumanApprovalKind,
    JoinKind,
    McpToolKind,
    ModelKind,
    Node,
    NodeKind,
    ParallelKind,
    PythonFnKind,
    RetryPolicy,
    SourceLocation,
    StateField,
    Timeouts,
    ToolKind,
    WaitKind,
    Workflow,
    check,
    decode_workflow,
    encode_workflow,
    validate,
    workflow_from_ir,
)

CONDITIONS = ["n > 3", "state.tier == 'gold'", "flag", "x in [1, 2]", "not done or n <= 0"]
SCHEMA = {"n": StateField(type="integer", default=0), "out": StateField(type="any")}


class _Builder:
    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.ids = (f"n{i}" for i in itertools.count())
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []

    def tool(self, cont: str) -> str:
        nid = next(self.ids)
        key = self.draw(st.sampled_from([None, "n", "out"]))
        self.nodes[nid] = Node(id=nid, kind=ToolKind(tool_ref="t"), output_key=key)
        if self.draw(st.booleans()):  # a conditional edge first, then the fallback
            target = self.draw(st.sampled_from([cont, END]))
            self.edges.append(Edge(nid, target, self.draw(st.sampled_from(CONDITIONS))))
        self.edges.append(Edge(nid, cont))
        return nid

    def chain(self, cont: str, length: int) -> tuple[str, str]:
        """A straight chain of tools ending at ``cont``; returns (first, last)."""
        last = self.tool(cont)
        first = last
        for _ in range(length - 1):
            first = self.tool(first)
        return first, last

    def segment(self, cont: str, depth: int) -> str:
        shape = self.draw(st.sampled_from(["tool", "chain", "branch", "parallel"]))
        if depth >= 3 or shape == "tool":
            return self.tool(cont)
        if shape == "chain":
            return self.segment(self.segment(cont, depth + 1), depth + 1)
        if shape == "branch":
            targets = [self.segment(cont, depth + 1) for _ in range(self.draw(st.integers(1, 3)))]
            cases = [BranchCase(to=t, when=self.draw(st.sampled_from(CONDITIONS))) for t in targets]
            default = self.draw(st.sampled_from([None, cont, targets[0]]))
            nid = next(self.ids)
            self.nodes[nid] = Node(id=nid, kind=BranchKind(cases=cases, default=default))
            return nid
        join = next(self.ids)
        self.edges.append(Edge(join, cont))
        chains = [
            self.chain(join, self.draw(st.integers(1, 3)))
            for _ in range(self.draw(st.integers(1, 3)))
        ]
        explicit = self.draw(st.booleans())
        self.nodes[join] = Node(
            id=join, kind=JoinKind(wait_for=[c[1] for c in chains] if explicit else [])
        )
        nid = next(self.ids)
        self.nodes[nid] = Node(id=nid, kind=ParallelKind(branches=[c[0] for c in chains]))
        return nid


@st.composite
def workflows(draw: Any) -> Workflow:
    b = _Builder(draw)
    final = END
    if draw(st.booleans()):
        final = "done"
        b.nodes["done"] = Node(id="done", kind=EndKind(output="out"))
    start = b.segment(final, 0)
    return Workflow(
        workflow_id="gen", version="1", start_node=start, nodes=b.nodes, edges=b.edges,
        state_schema=draw(st.sampled_from([SCHEMA, ""])),
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(wf=workflows())
def test_generated_graphs_are_valid_and_round_trip(wf: Workflow) -> None:
    assert validate(wf) == []
    check(wf)
    assert decode_workflow(encode_workflow(wf)) == wf
    assert workflow_from_ir(msgspec.to_builtins(wf)) == wf


def test_every_kind_round_trips() -> None:
    kinds: list[NodeKind] = [
        ToolKind(tool_ref="t", input_mapping={"a": "$b"}, output_schema={"type": "object"}),
        PythonFnKind(module="m", function="f"),
        McpToolKind(server="s", tool="t"),
        ModelKind(model_ref="m", prompt="p", system_prompt="s"),
        HttpKind(url="http://x", method="POST", headers={"h": "v"}, body=[1]),
        WaitKind(duration_secs=1.5, correlation_key="ev"),
        HumanApprovalKind(description="d", timeout_secs=5),
        EvalKind(scorers=[{"type": "latency"}], max_retries=1),
        AgentKind(agent_ref="a"),
        A2aTaskKind(remote_agent="r", stream=True),
    ]
    nodes = {f"k{i}": Node(id=f"k{i}", kind=k, input={"x": 1}) for i, k in enumerate(kinds)}
    ids = list(nodes)
    wf = Workflow(
        workflow_id="all",
        version="2",
        start_node=ids[0],
        nodes={**nodes, "fin": Node(id="fin", kind=EndKind())},
        edges=[Edge(a, b) for a, b in itertools.pairwise([*ids, "fin"])],
        state_schema={"x": StateField(type="array", default=[1], required=True)},
        retry_policies={"p": RetryPolicy(max_attempts=2, retry_on=["timeout"])},
        timeouts=Timeouts(workflow_timeout=10.0, heartbeat_interval=None),
        labels={"a": "b"},
        locations={"nodes.k0": SourceLocation("f.yaml", 3, 2)},
    )
    check(wf)
    data = encode_workflow(wf)
    assert decode_workflow(data) == wf
    again = workflow_from_ir(msgspec.json.decode(data))
    assert again == wf and encode_workflow(again) == data
