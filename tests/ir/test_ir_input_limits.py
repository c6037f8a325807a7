"""Input that costs too much is refused early with a clear error, never a crash (I10).

Boundedness is shown by counting (values composed, edge-list scans) or by a limit being hit
with an error naming the limit, never by timing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import msgspec
import pytest

from tether.ir import (
    END,
    Edge,
    Node,
    ToolKind,
    Workflow,
    WorkflowError,
    WorkflowInvalid,
    WorkflowSyntaxError,
    compile_condition,
    compile_yaml_text,
    validate,
)
from tether.ir.limits import InputLimits
from tether.ir.submitted import compile_submitted_ir
from tether.ir.yaml_source import MAX_YAML_VALUES, load_yaml

HEADER = "workflow: {id: w, version: '1'}\n"


def alias_bomb(levels: int) -> str:
    """Billion laughs: each level is a list of nine aliases of the level below."""
    lines = [
        HEADER.rstrip(),
        "models:",
        '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"nodes: {{a: {{tool: t, input: {{x: *l{levels - 1}}}}}}}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_alias_that_passes_the_limit() -> None:
    text = alias_bomb(6)  # about 600k values once expanded, from a few hundred bytes
    assert len(text) < 600
    with pytest.raises(WorkflowSyntaxError) as info:
        compile_yaml_text(text, "bomb.yaml")
    message = str(info.value)
    assert message.startswith("bomb.yaml:8:"), message  # the line of the level-5 anchor's list
    assert f"limit {MAX_YAML_VALUES}" in message
    assert "alias *l" in message


def test_the_value_budget_counts_each_alias_as_its_expanded_node() -> None:
    # 1 (mapping) + a: 1 key + 4 (list and 3 items) + b: 1 key + 4 (the alias, expanded) = 11
    text = "a: &x [1, 2, 3]\nb: *x\n"
    assert load_yaml(text, "f.yaml", max_values=11).data == {"a": [1, 2, 3], "b": [1, 2, 3]}
    with pytest.raises(WorkflowSyntaxError, match=r"^f\.yaml:2:4: .*limit 10\): alias \*x"):
        load_yaml(text, "f.yaml", max_values=10)


def test_a_large_document_without_aliases_hits_the_same_limit() -> None:
    text = "items: [" + ", ".join(["1"] * 50) + "]\n"
    with pytest.raises(WorkflowSyntaxError, match=r"limit 20\): the document passes the limit"):
        load_yaml(text, "f.yaml", max_values=20)


def test_normal_anchors_aliases_and_merge_keys_still_work() -> None:
    wf = compile_yaml_text(
        HEADER
        + textwrap.dedent(
            """
            models:
              base: &base {type: tool, tool: t}
              args: &args {city: state.city, days: [1, 2, 3]}
            nodes:
              a: {<<: *base, input: *args, next: b}
              b: {<<: *base, input: {nested: *args}}
            """
        )
    )
    assert wf.nodes["a"].input == {"city": "state.city", "days": [1, 2, 3]}
    assert wf.nodes["b"].input == {"nested": {"city": "state.city", "days": [1, 2, 3]}}


def test_a_recursive_alias_is_named() -> None:
    with pytest.raises(WorkflowSyntaxError, match=r"^f\.yaml:1:11: alias \*x is inside"):
        load_yaml("a: &x [1, *x]\n", "f.yaml")


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_nesting_is_a_syntax_error_not_a_recursion_error(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = "a: " + opener * 5000 + "1" + closer * 5000 + "\n"
    with pytest.raises(WorkflowSyntaxError, match=r"^f\.yaml:1:\d+: YAML nested too deeply"):
        load_yaml(text, "f.yaml")


# -- validation is linear: the edge list is scanned a bounded number of times ---------------


class CountingEdges(list[Edge]):
    """An edge list that counts full scans (every ``for e in edges`` starts one)."""

    scans = 0

    def __iter__(self) -> Iterator[Edge]:
        self.scans += 1
        return super().__iter__()


def chain(n: int) -> Workflow:
    nodes = {f"n{i}": Node(id=f"n{i}", kind=ToolKind(tool_ref="t")) for i in range(n)}
    edges = [Edge(from_=f"n{i}", to=f"n{i + 1}" if i + 1 < n else END) for i in range(n)]
    return Workflow(workflow_id="w", version="1", start_node="n0", nodes=nodes, edges=edges)


def with_counting_edges(wf: Workflow) -> tuple[Workflow, CountingEdges]:
    edges = CountingEdges(wf.edges)
    return msgspec.structs.replace(wf, edges=edges), edges


def test_validating_a_20k_node_chain_scans_the_edges_a_few_times_not_once_per_node() -> None:
    wf, edges = with_counting_edges(chain(20_000))
    assert validate(wf) == []
    assert edges.scans <= 3, edges.scans  # was one scan per node (and per successor query)


def test_validation_issues_on_20k_nodes_stay_linear() -> None:
    # Every edge names a missing node: each issue used to search all nodes for a hint.
    wf = chain(20_000)
    broken = [Edge(from_=e.from_, to=f"m{i}") for i, e in enumerate(wf.edges)]
    wf, edges = with_counting_edges(msgspec.structs.replace(wf, edges=broken))
    issues = validate(wf)
    assert sum("names unknown node" in i.message for i in issues) == 20_000
    assert edges.scans <= 3, edges.scans


def test_a_20k_node_ir_chain_compiles_within_raised_limits() -> None:
    ir = msgspec.to_builtins(chain(20_000))
    wf = compile_submitted_ir(ir, "chain.json", limits=InputLimits(max_nodes=20_000))
    assert len(wf.nodes) == 20_000 and len(wf.edges) == 20_000
    with pytest.raises(WorkflowInvalid) as info:
        compile_submitted_ir(ir, "chain.json")
    assert str(info.value) == (
        "chain.json: nodes: the workflow has 20000 nodes; the limit is 10000 "
        "(InputLimits.max_nodes)"
    )


def test_the_node_limit_applies_to_yaml_with_the_line_of_the_nodes_section() -> None:
    lines = [HEADER.rstrip(), "nodes:"]
    lines += [f"  n{i}: {{tool: t, next: n{i + 1}}}" for i in range(10)]
    lines.append("  n10: {tool: t}")
    text = "\n".join(lines) + "\n"
    assert len(compile_yaml_text(text, "f.yaml", limits=InputLimits(max_nodes=11)).nodes) == 11
    with pytest.raises(WorkflowSyntaxError) as info:
        compile_yaml_text(text, "f.yaml", limits=InputLimits(max_nodes=10))
    message = "f.yaml:2:1: the workflow has 11 nodes; the limit is 10 (InputLimits.max_nodes)"
    assert str(info.value) == message


def one_node_ir(value: object) -> dict[str, object]:
    node = {"id": "a", "kind": {"type": "tool", "tool_ref": "t"}, "input": {"x": value}}
    return {
        "workflow_id": "w",
        "version": "1",
        "start_node": "a",
        "nodes": {"a": node},
        "edges": [{"from": "a", "to": "end"}],
    }


def test_deeply_nested_ir_input_is_refused_by_depth_not_a_recursion_error() -> None:
    value: object = 1
    for _ in range(5_000):
        value = {"k": [value]}
    with pytest.raises(WorkflowInvalid) as info:
        compile_submitted_ir(one_node_ir(value), "deep.json")
    assert str(info.value) == (
        "deep.json: nodes.a: the IR nests deeper than 100 levels here; the limit is 100 "
        "(InputLimits.max_depth)"
    )


def test_an_ir_with_too_many_values_is_refused_before_it_is_converted() -> None:
    ir = one_node_ir(list(range(100)))
    assert compile_submitted_ir(ir, limits=InputLimits(max_ir_values=200)).nodes["a"].input
    with pytest.raises(WorkflowInvalid, match=r"more than 50 values.*InputLimits.max_ir_values"):
        compile_submitted_ir(ir, limits=InputLimits(max_ir_values=50))


def test_too_many_edges_name_their_limit() -> None:
    ir = one_node_ir(1)
    ir["edges"] = [{"from": "a", "to": "end"}] * 3
    with pytest.raises(WorkflowInvalid, match=r"3 edges; the limit is 2 \(InputLimits.max_edges"):
        compile_submitted_ir(ir, "e.json", limits=InputLimits(max_edges=2))


# -- conditions: long chains are wide, deep ones a clear error ------------------------------


def test_a_deep_not_chain_is_a_workflow_error_not_a_recursion_error() -> None:
    with pytest.raises(WorkflowError, match="nested too deeply"):
        compile_condition("not " * 5_000 + "x")
    assert compile_condition("not " * 10 + "x").evaluate({"x": True}) is True


def test_a_not_chain_in_a_workflow_is_a_validation_issue() -> None:
    wf = chain(2)
    edges = [Edge(from_="n0", to="n1", condition="not " * 5_000 + "x"), *wf.edges]
    issues = validate(msgspec.structs.replace(wf, edges=edges))
    assert len(issues) == 1 and "nested too deeply" in issues[0].message


@pytest.mark.parametrize("word", ["and", "or"])
def test_long_and_or_chains_compile_and_evaluate(word: str) -> None:
    source = f" {word} ".join(f"x{i} == {i}" for i in range(5_000))
    cond = compile_condition(source)
    state = {f"x{i}": i for i in range(5_000)}
    assert cond.evaluate(state) is True
    state["x4999"] = -1
    assert cond.evaluate(state) is (word == "or")
