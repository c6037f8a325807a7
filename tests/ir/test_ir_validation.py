"""Validation: one test per kind of issue, plus how issues are reported."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from tether.ir import (
    END,
    BranchCase,
    BranchKind,
    Edge,
    EndKind,
    HumanApprovalKind,
    JoinKind,
    Node,
    ParallelKind,
    RetryPolicy,
    SourceLocation,
    StateField,
    Timeouts,
    ToolKind,
    WaitKind,
    Workflow,
    WorkflowInvalid,
    check,
    compile_yaml_text,
    validate,
)


def tool(node_id: str, **kw: Any) -> Node:
    return Node(id=node_id, kind=ToolKind(tool_ref="t"), **kw)


def wf_of(*nodes: Node, edges: list[tuple[str, str]] | None = None, **kw: Any) -> Workflow:
    chain = edges if edges is not None else [(n.id, END) for n in nodes]
    return Workflow(
        workflow_id="w",
        version="1",
        start_node=kw.pop("start", nodes[0].id),
        nodes={n.id: n for n in nodes},
        edges=[Edge(from_=a, to=b) for a, b in chain],
        **kw,
    )


def messages(wf: Workflow) -> list[str]:
    return [i.message for i in validate(wf)]


def only_issue(wf: Workflow) -> str:
    found = messages(wf)
    assert len(found) == 1, found
    return found[0]


def test_a_valid_workflow_has_no_issues() -> None:
    wf = wf_of(tool("a"), tool("b"), edges=[("a", "b"), ("b", END)])
    assert validate(wf) == []
    check(wf)


def test_start_node_must_exist() -> None:
    wf = wf_of(tool("fetch"), start="fetc")
    found = messages(wf)
    assert "start node 'fetc' does not exist (did you mean 'fetch'?)" in found


def test_unknown_edge_target() -> None:
    wf = wf_of(tool("a"), edges=[("a", "b")])
    assert only_issue(wf) == "node 'a': next names unknown node 'b'"
    assert validate(wf)[0].path == "nodes.a.next"


def test_edge_from_unknown_node() -> None:
    wf = wf_of(tool("a"), edges=[("a", END), ("zz", END)])
    assert only_issue(wf) == "an edge starts at unknown node 'zz'"


def test_unknown_branch_targets() -> None:
    branch = Node(id="b", kind=BranchKind(cases=[BranchCase(to="x", when="n > 1")], default="y"))
    found = messages(wf_of(branch, edges=[]))
    assert "node 'b': a case names unknown node 'x'" in found
    assert "node 'b': default names unknown node 'y'" in found


def test_unknown_parallel_and_join_targets() -> None:
    par = Node(id="p", kind=ParallelKind(branches=["a", "ghost", END]))
    join = Node(id="j", kind=JoinKind(wait_for=["a", "phantom"]))
    wf = wf_of(par, tool("a"), join, edges=[("a", "j"), ("j", END)])
    found = messages(wf)
    assert "node 'p': a branch names unknown node 'ghost'" in found
    assert "node 'p': a branch can't be 'end'" in found
    assert "node 'j': wait_for names unknown node 'phantom'" in found


def test_parallel_needs_branches() -> None:
    wf = wf_of(Node(id="p", kind=ParallelKind(branches=[])), edges=[])
    assert "node 'p': a parallel node needs branches" in messages(wf)


def test_unknown_fallback_node() -> None:
    node = Node(id="h", kind=HumanApprovalKind(fallback_node="nowhere"))
    assert only_issue(wf_of(node)) == "node 'h': fallback names unknown node 'nowhere'"


def test_unreachable_node() -> None:
    wf = wf_of(tool("a"), tool("island"))
    assert only_issue(wf) == "node 'island' is unreachable from the start 'a'"


def test_no_path_to_an_end() -> None:
    wf = wf_of(tool("a"), tool("b"), edges=[("a", "b"), ("b", "a")])
    found = messages(wf)
    assert found == [
        "node 'a': no path from it to an end (a loop that never finishes?)",
        "node 'b': no path from it to an end (a loop that never finishes?)",
    ]


def test_a_loop_with_an_exit_is_fine() -> None:
    wf = wf_of(tool("a"), tool("b"), edges=[("a", "b"), ("b", "a"), ("b", END)])
    assert validate(wf) == []


def test_node_with_no_way_out() -> None:
    wf = wf_of(tool("a"), tool("b"), edges=[("a", "b")])
    # Only the root cause is reported, not "no path to an end" for every node upstream.
    assert only_issue(wf) == "node 'b' has no way out: add 'next' (use 'next: end' to finish)"


def test_branch_with_nothing_to_route_to() -> None:
    wf = wf_of(Node(id="b", kind=BranchKind()), edges=[])
    assert only_issue(wf) == "node 'b': a branch needs cases or a default"


def test_end_nodes_and_branches_need_no_edges() -> None:
    branch = Node(id="b", kind=BranchKind(cases=[BranchCase(to="e", when="x")], default=END))
    wf = wf_of(branch, Node(id="e", kind=EndKind()), edges=[])
    assert validate(wf) == []


def test_output_key_missing_from_typed_schema() -> None:
    schema = {"n": StateField(type="integer")}
    wf = wf_of(tool("a", output_key="m"), tool("b"), edges=[("a", "b"), ("b", END)],
               state_schema=schema)  # fmt: skip
    # 'b' has no explicit output_key, so its default (the node id) is not checked.
    assert only_issue(wf) == "node 'a': output_key 'm' is not in the state_schema"


def test_output_key_not_checked_without_a_schema() -> None:
    assert validate(wf_of(tool("a", output_key="m"), state_schema="pkg.State")) == []


def test_invalid_condition_on_an_edge() -> None:
    wf = Workflow(
        workflow_id="w", version="1", start_node="a", nodes={"a": tool("a")},
        edges=[Edge(from_="a", to=END, condition="x >"), Edge(from_="a", to=END)],
    )  # fmt: skip
    assert only_issue(wf).startswith("node 'a': invalid condition 'x >' at column 4")


def test_invalid_condition_in_a_branch_case() -> None:
    branch = Node(id="b", kind=BranchKind(cases=[BranchCase(to=END, when="size(x)")]))
    assert "function calls are not supported" in only_issue(wf_of(branch, edges=[]))


def test_schema_unknown_type_and_bad_default() -> None:
    schema = {
        "a": StateField(type="integr"),
        "b": StateField(type="integer", default="zero"),
        "c": StateField(type="number", default=True),
        "d": StateField(type="array", default=[]),
    }
    found = messages(wf_of(tool("x"), state_schema=schema))
    assert found[0].startswith("state key 'a': unknown type 'integr' (did you mean 'integer'?)")
    assert found[1:] == [
        "state key 'b': default 'zero' is not a integer",
        "state key 'c': default True is not a number",
    ]


def test_node_id_must_match_its_key() -> None:
    wf = Workflow(workflow_id="w", version="1", start_node="a", nodes={"a": tool("b")},
                  edges=[Edge(from_="a", to=END)])  # fmt: skip
    assert only_issue(wf) == "node 'a' has a different id 'b'"


def test_a_node_named_end_must_be_an_end_node() -> None:
    wf = wf_of(tool("a"), tool(END), edges=[("a", END), (END, END)])
    assert "'end' is reserved for the end of the run; rename it" in messages(wf)
    ok = wf_of(tool("a"), Node(id=END, kind=EndKind()), edges=[("a", END)])
    assert validate(ok) == []


def test_duplicate_ids_in_yaml_are_refused() -> None:
    from tether.ir import WorkflowSyntaxError

    with pytest.raises(WorkflowSyntaxError, match="duplicate key 'a'"):
        compile_yaml_text("workflow: {id: w}\nnodes:\n  a: {tool: t}\n  a: {tool: t}\n")


def test_unknown_retry_policy_name() -> None:
    wf = wf_of(tool("a", retry_policy="fast"), retry_policies={"slow": RetryPolicy()})
    assert only_issue(wf) == "node 'a': unknown retry policy 'fast' (known: slow)"


def test_negative_timeouts_and_attempts() -> None:
    bad = RetryPolicy(max_attempts=0, backoff_initial_secs=-1, backoff_multiplier=0.5)
    wf = wf_of(
        tool("a", node_timeout_secs=-5, retry_policy=bad),
        Node(id="w", kind=WaitKind(duration_secs=-1)),
        edges=[("a", "w"), ("w", END)],
        retry_policies={"p": RetryPolicy(jitter=-0.1)},
        timeouts=Timeouts(workflow_timeout=-1),
    )
    found = messages(wf)
    assert "node 'a': timeout must be positive, got -5" in found
    assert "node 'a': max_attempts must be at least 1, got 0" in found
    assert "node 'a': backoff_initial_secs must not be negative, got -1" in found
    assert "node 'a': backoff_multiplier must be at least 1, got 0.5" in found
    assert "node 'w': duration must not be negative, got -1" in found
    assert "retry policy 'p': jitter must not be negative, got -0.1" in found
    assert "timeouts.workflow_timeout must be positive, got -1" in found


def test_join_waiting_for_a_node_that_never_routes_to_it() -> None:
    par = Node(id="p", kind=ParallelKind(branches=["a", "b"]))
    join = Node(id="j", kind=JoinKind(wait_for=["a", "b"]))
    wf = wf_of(par, tool("a"), tool("b"), join, edges=[("a", "j"), ("b", END), ("j", END)])
    assert only_issue(wf) == "node 'j': waits for 'b', which never routes to it"


def test_parallel_edges_are_ignored_for_reachability() -> None:
    # The runtime ignores a parallel node's edges, so 'after' is unreachable here.
    par = Node(id="p", kind=ParallelKind(branches=["a"]))
    wf = wf_of(par, tool("a"), tool("after"), edges=[("p", "after"), ("a", END), ("after", END)])
    assert only_issue(wf) == "node 'after' is unreachable from the start 'p'"


def test_check_lists_every_issue_with_file_and_line() -> None:
    text = textwrap.dedent(
        """\
        workflow: {id: w, state_schema: {n: integer}}
        nodes:
          a:
            tool: t
            output_key: m
            next: [{to: b, when: "n >"}]
          orphan: {tool: t}
        """
    )
    with pytest.raises(WorkflowInvalid) as info:
        compile_yaml_text(text, "f.yaml")
    assert str(info.value).splitlines() == [
        "f.yaml:6:12: node 'a': next names unknown node 'b'",
        "f.yaml:6:20: node 'a': invalid condition 'n >' at column 4: expected a value, "
        "got the end of the condition",
        "f.yaml:7:3: node 'orphan' is unreachable from the start 'a'",
        "f.yaml:5:5: node 'a': output_key 'm' is not in the state_schema",
    ]
    issue = info.value.issues[0]
    assert issue.path == "nodes.a.next"
    assert issue.location == SourceLocation("f.yaml", 6, 12)


def test_issues_without_a_location_show_their_path() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        check(wf_of(tool("a"), edges=[("a", "zz")]))
    assert str(info.value) == "nodes.a.next: node 'a': next names unknown node 'zz'"


def test_a_node_id_with_a_slash_is_refused_naming_the_node() -> None:
    # Work items are named execution/node/dispatch: a '/' in a node id would let two differ
    # by where the split falls.
    wf = wf_of(tool("fetch/1"))
    assert only_issue(wf) == "node 'fetch/1': a node id may not contain '/'"
    assert validate(wf)[0].path == "nodes.fetch/1"


def test_a_node_id_longer_than_work_items_carry_is_refused() -> None:
    from tether.ir import WorkflowError, compile_yaml_text
    from tether.ir.validation import MAX_NODE_ID_CHARS

    long_id = "n" * (MAX_NODE_ID_CHARS + 1)
    text = f'workflow: {{id: w, version: "1", start: {long_id}}}\n'
    text += f"nodes: {{{long_id}: {{type: end}}}}\n"
    with pytest.raises(WorkflowError, match=f"at most {MAX_NODE_ID_CHARS}"):
        compile_yaml_text(text, "long.yaml")
