"""The recursive parallel-block analysis as it was before it became iterative (test-only).

Kept verbatim (bar this docstring) so tests/runtime/test_parallel_blocks_equivalence.py can
check that tether.runtime.parallel_blocks computes exactly what it did: the same join counts
and the same problems, word for word and in the same order. It recurses once per node and
re-walks every route out of a branching node, so give it small graphs and a raised recursion
limit.
"""

from __future__ import annotations

from collections import Counter

from tether.ir.types import (
    BranchKind,
    EndKind,
    JoinKind,
    ParallelKind,
    Workflow,
)


class _Ambiguous(Exception):
    pass


class _Walker:
    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self.problems: list[str] = []
        self._closing: dict[str, Counter[str]] = {}
        #: Nested blocks whose tokens count at a join of an enclosing block.
        self.absorbed: set[str] = set()
        self.by_source = wf.edges_by_source()  # one scan, not one per node visited

    def exits(self, node_id: str) -> list[str]:
        node = self.wf.nodes[node_id]
        out = [e.to for e in self.by_source.get(node_id, [])]
        if isinstance(node.kind, BranchKind):
            out = [c.to for c in node.kind.cases]
            out += [node.kind.default] if node.kind.default else []
        return list(dict.fromkeys(out))

    def block(self, parallel_id: str, active: frozenset[str]) -> Counter[str]:
        """Where the tokens of one parallel block stop: join id -> number of tokens."""
        if parallel_id in self._closing:
            return self._closing[parallel_id]
        if parallel_id in active:
            raise _Ambiguous(f"parallel {parallel_id!r} re-enters itself before its join")
        kind = self.wf.nodes[parallel_id].kind
        assert isinstance(kind, ParallelKind)
        stops: Counter[str] = Counter()
        nested: list[tuple[str, Counter[str]]] = []
        owner: dict[str, str] = {}
        for branch in kind.branches:
            self._walk(branch, stops, nested, owner, branch, active | {parallel_id}, frozenset())
        # A worklist: the token carrying on from a nested block's own join may open further
        # nested blocks (a join followed by another parallel), whose tokens count here too.
        while nested:
            inner_id, inner = nested.pop(0)
            for join_id, n in inner.items():
                if join_id in stops:  # shared with sibling tokens: they all count there
                    stops[join_id] += n
                    self.absorbed.add(inner_id)
                else:  # the nested block's own join: one token carries on from it
                    for nxt in self.exits(join_id):
                        self._walk(nxt, stops, nested, owner, join_id, active, frozenset())
        self._closing[parallel_id] = stops
        return stops

    def _walk(
        self,
        node_id: str,
        stops: Counter[str],
        nested: list[tuple[str, Counter[str]]],
        owner: dict[str, str],
        branch: str,
        active: frozenset[str],
        path: frozenset[str],
    ) -> None:
        node = self.wf.nodes.get(node_id)
        if node is None or node_id in path:
            return  # `end`, or a loop back: the token leaves through the loop's exit
        kind = node.kind
        if isinstance(kind, JoinKind):
            stops[node_id] += 1
            return
        if isinstance(kind, EndKind):
            return
        seen = owner.setdefault(node_id, branch)
        if seen != branch:
            raise _Ambiguous(
                f"parallel branches {seen!r} and {branch!r} both reach node {node_id!r} "
                "before a join; it would run once per branch (route them to a join first)"
            )
        if isinstance(kind, ParallelKind):
            nested.append((node_id, self.block(node_id, active)))
            return
        outcomes = []
        for nxt in self.exits(node_id):
            alt: Counter[str] = Counter()
            alt_nested: list[tuple[str, Counter[str]]] = []
            self._walk(nxt, alt, alt_nested, owner, branch, active, path | {node_id})
            outcomes.append((alt, alt_nested))
        reaching = [o for o in outcomes if o[0] or o[1]]
        if not reaching:
            return
        first = reaching[0]
        for other in reaching[1:]:
            if other[0] != first[0] or other[1] != first[1]:
                raise _Ambiguous(
                    f"the routes out of node {node_id!r} bring different tokens to joins "
                    f"({dict(first[0])} vs {dict(other[0])})"
                )
        stops.update(first[0])
        nested.extend(first[1])


def analyze_parallel_blocks(wf: Workflow) -> tuple[dict[str, int], list[str]]:
    """Arrivals each join waits for (joins with ``wait_for`` excluded), and shape problems."""
    walker = _Walker(wf)
    counts: dict[str, int] = {}
    problems: list[str] = []
    blocks: dict[str, Counter[str]] = {}
    for node in wf.nodes.values():
        if isinstance(node.kind, ParallelKind):
            try:
                blocks[node.id] = walker.block(node.id, frozenset())
            except _Ambiguous as exc:
                problems.append(f"node {node.id!r}: {exc}")
    for node_id, stops in blocks.items():
        if node_id in walker.absorbed:
            continue  # its tokens are counted by the enclosing block
        if len(stops) > 1:
            problems.append(
                f"node {node_id!r}: its branches end at different joins "
                f"({', '.join(sorted(stops))}); close a parallel block with one join"
            )
        for join_id, n in stops.items():
            join = wf.nodes[join_id].kind
            if isinstance(join, JoinKind) and not join.wait_for:
                if counts.get(join_id, n) != n:
                    problems.append(f"join {join_id!r} closes blocks of different sizes")
                counts[join_id] = n
    for node in wf.nodes.values():
        if isinstance(node.kind, JoinKind) and not node.kind.wait_for:
            counts.setdefault(node.id, 1)  # closes no parallel block: first arrival fires it
    return counts, problems
