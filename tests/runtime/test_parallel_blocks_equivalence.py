"""The iterative parallel-block analysis computes exactly what the recursive one it replaced
did (tests/runtime/parallel_blocks_reference.py): the same join counts and the same problems,
word for word and in the same order, on generated graphs of nested parallel/join blocks,
branches and loops, valid or not."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import parallel_blocks_reference as reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.ir.types import (
    END,
    BranchCase,
    BranchKind,
    Edge,
    EndKind,
    JoinKind,
    Node,
    ParallelKind,
    ToolKind,
    Workflow,
)
from tether.runtime.parallel_blocks import analyze_parallel_blocks
from tether.testing.strategies import random_workflows

Analysis = tuple[dict[str, int], list[str]]


class OverBudget(Exception):
    """The reference walk visited more nodes than a small graph should need."""


@contextmanager
def reference_bounded(visits: int, depth: int) -> Iterator[None]:
    """Run the reference with a raised recursion limit and a budget of node visits (counted
    on ``exits``, which it calls once per node visit): on a few graphs it recurses forever
    or re-walks exponentially, and there it has no result to compare with."""
    count = 0
    exits = reference._Walker.exits

    def counted(self: reference._Walker, node_id: str) -> list[str]:
        nonlocal count
        count += 1
        if count > visits:
            raise OverBudget
        return exits(self, node_id)

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, depth))
    reference._Walker.exits = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        reference._Walker.exits = exits  # type: ignore[method-assign]
        sys.setrecursionlimit(before)


def assert_same_as_reference(wf: Workflow) -> Analysis:
    new = analyze_parallel_blocks(wf)
    try:
        with reference_bounded(visits=100_000, depth=5_000):
            old = reference.analyze_parallel_blocks(wf)
    except RecursionError:
        # The recursive walk recomputed a block that re-enters itself through a nested
        # join forever; the iterative one says so.
        assert any("re-enters itself" in p for p in new[1]), new
        return new
    except OverBudget:
        return new  # nothing to compare with; the new walk finished
    assert new == old
    return new


@st.composite
def tangled_workflows(draw: st.DrawFn) -> Workflow:
    """Any small graph of work, branch, parallel, join and end nodes: loops, shared nodes,
    dangling targets, parallels that re-enter themselves, joins with several ways on."""
    count = draw(st.integers(2, 9))
    ids = [f"n{i}" for i in range(count)]
    targets = st.sampled_from([*ids, END, "missing"])
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    for node_id in ids:
        kind_name = draw(st.sampled_from(["tool", "tool", "branch", "parallel", "join", "end"]))
        kind: Any
        if kind_name == "branch":
            cases = draw(st.lists(targets, max_size=3))
            default = draw(st.none() | targets)
            arms = [BranchCase(to=t, when="n > 0") for t in cases]
            kind = BranchKind(cases=arms, default=default)
        elif kind_name == "parallel":
            kind = ParallelKind(branches=draw(st.lists(targets, min_size=1, max_size=3)))
        elif kind_name == "join":
            kind = JoinKind(wait_for=draw(st.lists(st.sampled_from(ids), max_size=1)))
        elif kind_name == "end":
            kind = EndKind()
        else:
            kind = ToolKind(tool_ref="mix")
        nodes[node_id] = Node(id=node_id, kind=kind)
        for to in draw(st.lists(targets, max_size=3)):
            edges.append(Edge(from_=node_id, to=to))
    return Workflow(workflow_id="w", version="1", start_node=ids[0], nodes=nodes, edges=edges)


@st.composite
def rewired_workflows(draw: st.DrawFn) -> Workflow:
    """A valid workflow of nested blocks and branches, with a few extra edges: loops back,
    routes across blocks, and routes out of joins."""
    wf = draw(random_workflows(max_depth=3))
    ids = sorted(wf.nodes)
    extra = draw(
        st.lists(st.tuples(st.sampled_from(ids), st.sampled_from([*ids, END])), max_size=4)
    )
    return msgspec.structs.replace(wf, edges=[*wf.edges, *(Edge(from_=a, to=b) for a, b in extra)])


def few(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


@few(150)
@given(wf=random_workflows(max_depth=3))
def test_same_result_on_nested_blocks_and_branches(wf: Workflow) -> None:
    assert_same_as_reference(wf)


@few(150)
@given(wf=rewired_workflows())
def test_same_result_with_loops_and_crossing_routes(wf: Workflow) -> None:
    assert_same_as_reference(wf)


@few(1000)
@given(wf=tangled_workflows())
def test_same_result_on_any_small_graph(wf: Workflow) -> None:
    assert_same_as_reference(wf)
