"""Parallel-block analysis on large or deeply nested workflows: a working Graph or a clear
refusal, never a RecursionError, and a number of node visits that follows from the size of
the workflow (issue 13, I10). Boundedness is shown by counting visits, not by timing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.ir import (
    END,
    BranchCase,
    BranchKind,
    Edge,
    JoinKind,
    Node,
    ParallelKind,
    ToolKind,
    Workflow,
)
from tether.runtime import parallel_blocks
from tether.runtime.graph import Graph
from tether.runtime.parallel_blocks import analyze_parallel_blocks


def tool(node_id: str) -> Node:
    return Node(id=node_id, kind=ToolKind(tool_ref="t"))


def workflow(start: str, nodes: list[Node], edges: list[tuple[str, str]]) -> Workflow:
    return Workflow(
        workflow_id="w",
        version="1",
        start_node=start,
        nodes={n.id: n for n in nodes},
        edges=[Edge(from_=a, to=b) for a, b in edges],
    )


class VisitBudget(Exception):
    pass


@pytest.fixture
def node_visits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts node visits (the walk asks for a node's exits once per visit), and stops the
    walk past a budget so an exponential walk fails the test instead of running for hours."""
    counter = [0]
    exits = parallel_blocks._Walker.exits

    def counted(self: parallel_blocks._Walker, node_id: str) -> list[str]:
        counter[0] += 1
        if counter[0] > 1_000_000:
            raise VisitBudget(f"{counter[0]} node visits")
        return exits(self, node_id)

    monkeypatch.setattr(parallel_blocks._Walker, "exits", counted)
    yield counter


def long_branch(length: int) -> Workflow:
    """p -> (c0 -> c1 -> ... -> c{length-1}, short) -> merge -> end."""
    chain = [f"c{i}" for i in range(length)]
    nodes = [Node(id="p", kind=ParallelKind(branches=["c0", "short"])), tool("short")]
    nodes += [tool(c) for c in chain] + [Node(id="merge", kind=JoinKind())]
    edges = list(zip(chain, [*chain[1:], "merge"], strict=True))
    edges += [("short", "merge"), ("merge", END)]
    return workflow("p", nodes, edges)


def test_a_parallel_branch_of_5000_nodes_builds(node_visits: list[int]) -> None:
    wf = long_branch(5_000)
    graph = Graph(wf)  # was a RecursionError: one stack frame per node of the branch
    assert graph.join_counts["merge"] == 2
    assert analyze_parallel_blocks(wf)[1] == []
    print(f"5,000-node branch: {node_visits[0]} node visits for two analyses")
    assert node_visits[0] <= 2 * 2 * len(wf.nodes)


def branch_diamonds(count: int) -> Workflow:
    """p -> (b0, short); each b_i routes to x_i or y_i, both of which go on to b_{i+1}."""
    nodes = [Node(id="p", kind=ParallelKind(branches=["b0", "short"])), tool("short")]
    edges = [("short", "merge")]
    for i in range(count):
        after = f"b{i + 1}" if i + 1 < count else "merge"
        arms = BranchKind(cases=[BranchCase(to=f"x{i}", when="n > 0")], default=f"y{i}")
        nodes += [Node(id=f"b{i}", kind=arms), tool(f"x{i}"), tool(f"y{i}")]
        edges += [(f"x{i}", after), (f"y{i}", after)]
    nodes.append(Node(id="merge", kind=JoinKind()))
    edges.append(("merge", END))
    return workflow("p", nodes, edges)


def test_30_branch_nodes_in_a_row_inside_a_parallel_block_visit_each_node_once(
    node_visits: list[int],
) -> None:
    wf = branch_diamonds(30)
    counts, problems = analyze_parallel_blocks(wf)
    assert (counts["merge"], problems) == (2, [])
    print(f"30 branch nodes in a row: {node_visits[0]} node visits ({len(wf.nodes)} nodes)")
    # Was 2**31 and more: every route out of every branch node walked again.
    assert node_visits[0] <= len(wf.nodes)


def test_a_loop_of_branch_nodes_inside_a_parallel_block_stays_linear(
    node_visits: list[int],
) -> None:
    # A retry loop: every b_i may route back to b0; the last one may leave for the join.
    wf = branch_diamonds(30)
    looped = [n for n in wf.nodes.values() if not n.id.startswith("b")]
    for i in range(30):
        after = "merge" if i == 29 else f"b{i + 1}"
        arms = [BranchCase(to=after, when="n > 0"), BranchCase(to="b0", when="n < 0")]
        looped.append(Node(id=f"b{i}", kind=BranchKind(cases=arms, default=f"x{i}")))
    wf = workflow("p", looped, [(e.from_, e.to) for e in wf.edges])
    counts, problems = analyze_parallel_blocks(wf)
    assert (counts["merge"], problems) == (2, [])
    print(f"30 looping branch nodes: {node_visits[0]} node visits ({len(wf.nodes)} nodes)")
    assert node_visits[0] <= len(wf.nodes)


def nested_blocks(depth: int) -> Workflow:
    """p0 -> (a0, p1), p1 -> (a1, p2), ...: each block's join j_i carries on to j_{i-1}."""
    nodes: list[Node] = []
    edges: list[tuple[str, str]] = [("j0", END)]
    for i in range(depth):
        inner = f"p{i + 1}" if i + 1 < depth else f"z{i}"
        nodes += [Node(id=f"p{i}", kind=ParallelKind(branches=[f"a{i}", inner])), tool(f"a{i}")]
        nodes.append(Node(id=f"j{i}", kind=JoinKind()))
        edges.append((f"a{i}", f"j{i}"))
        edges.append((f"j{i}", f"j{i - 1}") if i else ("j0", END))
    nodes.append(tool(f"z{depth - 1}"))
    edges.append((f"z{depth - 1}", f"j{depth - 1}"))
    return workflow("p0", nodes, edges[1:])


def test_parallel_blocks_nested_3000_deep_build(node_visits: list[int]) -> None:
    wf = nested_blocks(3_000)
    graph = Graph(wf)  # was a RecursionError: stack frames per nested block
    assert graph.join_counts["j0"] == graph.join_counts["j2999"] == 2
    assert analyze_parallel_blocks(wf)[1] == []
    print(f"3,000 nested blocks: {node_visits[0]} node visits for two analyses")
    assert node_visits[0] <= 2 * 2 * len(wf.nodes)


def test_a_block_that_re_enters_itself_through_a_nested_join_is_refused() -> None:
    # p's branch q is a nested block whose join carries its token back to p: the recursive
    # walk recomputed p forever (a RecursionError); now it is a problem check_runnable reports.
    wf = workflow(
        "p",
        [
            Node(id="p", kind=ParallelKind(branches=["a", "q"])),
            Node(id="q", kind=ParallelKind(branches=["m", "s"])),
            tool("a"),
            tool("m"),
            tool("s"),
            Node(id="jq", kind=JoinKind()),
            Node(id="jp", kind=JoinKind()),
        ],
        [("a", "jp"), ("m", "jq"), ("s", "jq"), ("jq", "p"), ("jp", END)],
    )
    counts, problems = analyze_parallel_blocks(wf)
    assert problems == ["node 'p': parallel 'p' re-enters itself before its join"]
    assert counts["jq"] == 2  # q on its own is a well-formed block
    Graph(wf)  # builds; registration refuses it on the problems above


def fanning_joins(count: int) -> Workflow:
    """Inside p, nested blocks q_i in a row; each one's join k_i has two routes (x_i, y_i),
    and both lead to q_{i+1}. The recursive walk counted each route as a token of its own."""
    nodes = [Node(id="p", kind=ParallelKind(branches=["short", "q0"])), tool("short")]
    edges = [("short", "merge"), ("merge", END)]
    for i in range(count):
        after = f"q{i + 1}" if i + 1 < count else "merge"
        nodes += [Node(id=f"q{i}", kind=ParallelKind(branches=[f"m{i}", f"s{i}"]))]
        nodes += [tool(f"m{i}"), tool(f"s{i}"), tool(f"x{i}"), tool(f"y{i}")]
        nodes.append(Node(id=f"k{i}", kind=JoinKind()))
        edges += [(f"m{i}", f"k{i}"), (f"s{i}", f"k{i}"), (f"k{i}", f"x{i}"), (f"k{i}", f"y{i}")]
        edges += [(f"x{i}", after), (f"y{i}", after)]
    nodes.append(Node(id="merge", kind=JoinKind()))
    return workflow("p", nodes, edges)


def test_joins_fanning_out_into_exponentially_many_continuations_are_refused(
    node_visits: list[int],
) -> None:
    wf = fanning_joins(25)  # 2**25 continuations for the recursive walk
    _, problems = analyze_parallel_blocks(wf)
    assert problems == [
        "node 'p': parallel 'p': the routes out of its nested joins reach nested blocks "
        f"more than {len(wf.nodes) + len(wf.edges)} times; give each join one way on"
    ]
    print(f"25 fanning joins: {node_visits[0]} node visits ({len(wf.nodes)} nodes)")
    assert node_visits[0] <= 4 * (len(wf.nodes) + len(wf.edges))
