"""Building a Graph (routing tables, parallel-block analysis) scans the edges a bounded
number of times, however many nodes the workflow has (issue 13: input that costs too much)."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from tether.ir import END, Edge, EndKind, JoinKind, Node, ParallelKind, ToolKind, Workflow, validate
from tether.runtime.graph import Graph


class CountingEdges(list[Edge]):
    """An edge list that counts full scans (every ``for e in edges`` starts one)."""

    scans = 0

    def __iter__(self) -> Iterator[Edge]:
        self.scans += 1
        return super().__iter__()


def parallel_blocks(blocks: int) -> Workflow:
    """``blocks`` parallel blocks in a row: p_i -> (a_i, b_i) -> j_i -> p_{i+1} ... -> done."""
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    for i in range(blocks):
        a, b, join = f"a{i}", f"b{i}", f"j{i}"
        after = f"p{i + 1}" if i + 1 < blocks else "done"
        nodes[f"p{i}"] = Node(id=f"p{i}", kind=ParallelKind(branches=[a, b]))
        nodes[a] = Node(id=a, kind=ToolKind(tool_ref="t"))
        nodes[b] = Node(id=b, kind=ToolKind(tool_ref="t"))
        nodes[join] = Node(id=join, kind=JoinKind())
        edges += [Edge(from_=a, to=join), Edge(from_=b, to=join), Edge(from_=join, to=after)]
    nodes["done"] = Node(id="done", kind=EndKind())
    return Workflow(workflow_id="w", version="1", start_node="p0", nodes=nodes, edges=edges)


def test_graph_of_20k_nodes_in_parallel_blocks_scans_the_edges_a_few_times() -> None:
    wf = parallel_blocks(5_000)
    counting = CountingEdges(wf.edges)
    wf = msgspec.structs.replace(wf, edges=counting)
    assert len(wf.nodes) == 20_001
    assert validate(wf) == []
    graph = Graph(wf)
    assert graph.join_counts["j4999"] == 2
    assert graph.route("j0", {}) == "p1"
    assert counting.scans <= 6, counting.scans  # was one scan per branch node walked
    assert END not in graph.nodes
