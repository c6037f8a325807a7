"""How many arrivals each join waits for, and which parallel shapes are ambiguous.

A parallel node sends one token down each branch. A token stops at the first join it meets.
A nested parallel's tokens either meet at a join of their own (then one token carries on from
that join) or at a join the outer block's tokens reach too (then they all count there). A
join without ``wait_for`` fires when every token of its block has arrived; a join no parallel
block closes (after a branch, say) fires on its first arrival.

Shapes the runtime could only run one way by accident are refused when the workflow is
registered: branches that meet at a work node instead of a join (it would run twice), branches
that end at different joins, alternatives that bring different numbers of tokens to a join.

The analysis runs on submitted workflows, so its cost follows from their size (I10, issue 13):
nothing recurses per node or per nested block (a branch of thousands of nodes is a loop, not a
stack), each token walk visits a node once however many routes lead to it (see
:mod:`tether.runtime.walk_reach` for loops), and each block is computed once (a refused one
again only where the blocks around it could change the answer). It computes exactly what the
recursive walk it replaced did (tests/runtime/parallel_blocks_reference.py keeps that walk; a
property test compares the two) except where that walk never finished: a block re-entered
through a nested block's join (it recursed forever) is refused as re-entering itself, and so
is a block whose nested joins fan out into more continuations than the workflow has nodes and
edges (joins whose several routes each reach the same block: exponentially many).

Example::

    counts, problems = analyze_parallel_blocks(workflow)
    counts["merge"]      # 2 for a parallel with two branches closing at "merge"
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field

from tether.ir.eval_spec import on_fail_mode
from tether.ir.types import (
    TERMINAL_KINDS,
    BranchKind,
    EvalKind,
    HumanApprovalKind,
    JoinKind,
    NodeKind,
    ParallelKind,
    WaitKind,
    Workflow,
)
from tether.runtime.walk_reach import WalkReach


def _other_route(kind: NodeKind) -> str | None:
    """A node's route besides its edges: a wait's ``on_timeout``, an approval's fallback, an
    eval's ``on_fail`` node (its retries go back, which the walk already has)."""
    if isinstance(kind, WaitKind):
        return kind.on_timeout
    if isinstance(kind, HumanApprovalKind):
        return kind.fallback_node
    if isinstance(kind, EvalKind) and on_fail_mode(kind.on_fail) == "route":
        return kind.on_fail
    return None


#: What a block's computation asks for: a nested block's stops, and whether the asking block
#: is inside that request's re-entry set (walking its own branches, not a token carrying on
#: from a nested join). Blocks are generators driven from one loop, so nesting costs no stack.
_Request = tuple[str, bool]
_Steps = Generator[_Request, "Counter[str] | None", "Counter[str]"]
_WalkSteps = Generator[_Request, "Counter[str] | None", None]
_FollowSteps = Generator[_Request, "Counter[str] | None", "str | None"]


class _Ambiguous(Exception):
    """A shape with no single meaning."""


@dataclass
class _BlockFrame:
    """One block being computed, on the driver's stack."""

    parallel_id: str
    steps: _Steps
    #: The size of the set of blocks its request was made inside (the recursive walk's
    #: ``active``). Those sets only grow down the stack, so equal size means equal set.
    active_size: int
    #: Its id is in the re-entry set of the request it is waiting on.
    lends_active: bool = False
    #: Nothing it asked for depended on which blocks enclose it. Whether a block re-enters
    #: an enclosing one does, so a refusal is remembered only when this still holds: every
    #: block it asked for was already known, or is known now.
    context_free: bool = True


@dataclass
class _NodeFrame:
    """A node on the current path of one token walk."""

    node_id: str
    exits: list[str]
    next_exit: int = 0
    #: Where the token stops along each exit taken so far (None: nowhere, or a loop back).
    outcomes: list[str | None] = field(default_factory=list)
    #: Nodes whose route back to this one was cut while it was on the path.
    returning: list[str] = field(default_factory=list)


def _reenters(parallel_id: str) -> _Ambiguous:
    return _Ambiguous(f"parallel {parallel_id!r} re-enters itself before its join")


class _Walker:
    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self._closing: dict[str, Counter[str]] = {}
        #: Blocks whose computation failed in a way that holds wherever they are nested.
        self._failed: dict[str, str] = {}
        #: Nested blocks whose tokens count at a join of an enclosing block.
        self.absorbed: set[str] = set()
        self.by_source = wf.edges_by_source()  # one scan, not one per node visited
        # Without blocks reached twice by the same token, a block has at most one nested
        # entry per parallel node; only joins whose several routes each reach the same block
        # multiply them, up to exponentially. Past this many the shape is refused.
        self._max_nested = len(wf.nodes) + len(wf.edges)
        self._stack: list[_BlockFrame] = []
        self._active: Counter[str] = Counter()  # ids of blocks lending to the current request
        self._open: dict[str, list[_BlockFrame]] = {}

    def exits(self, node_id: str) -> list[str]:
        node = self.wf.nodes[node_id]
        out = [e.to for e in self.by_source.get(node_id, [])]
        if isinstance(node.kind, BranchKind):
            out = [c.to for c in node.kind.cases]
            out += [node.kind.default] if node.kind.default else []
        elif (other := _other_route(node.kind)) is not None:
            out.append(other)  # where a token goes instead of next: it may stop elsewhere
        return list(dict.fromkeys(out))

    def block(self, parallel_id: str) -> Counter[str]:
        """Where the tokens of one parallel block stop: join id -> number of tokens."""
        outcome = self._open_block(parallel_id, in_branch=False)
        while self._stack:
            frame = self._stack[-1]
            try:
                if isinstance(outcome, _Ambiguous):
                    request = frame.steps.throw(outcome)
                else:
                    request = frame.steps.send(outcome)
            except StopIteration as done:
                self._close_block(frame)
                self._closing[frame.parallel_id] = outcome = done.value
                continue
            except _Ambiguous as exc:
                self._close_block(frame)
                if frame.context_free:
                    self._failed[frame.parallel_id] = str(exc)
                elif self._stack:
                    self._stack[-1].context_free = False
                outcome = exc
                continue
            outcome = self._open_block(*request)
        if isinstance(outcome, _Ambiguous):
            raise outcome
        assert outcome is not None
        return outcome

    def _open_block(self, parallel_id: str, in_branch: bool) -> Counter[str] | _Ambiguous | None:
        """A block's stops if known, its refusal if known, else None with its computation
        pushed (the driver starts it)."""
        if parallel_id in self._closing:
            return self._closing[parallel_id]
        asker = self._stack[-1] if self._stack else None
        if asker and in_branch and asker.parallel_id == parallel_id:
            return _reenters(parallel_id)  # a branch of its own: wherever it is nested
        if self._active[parallel_id]:
            assert asker is not None
            asker.context_free = False  # an enclosing block: only where it encloses this one
            return _reenters(parallel_id)
        if parallel_id in self._failed:
            return _Ambiguous(self._failed[parallel_id])
        size = asker.active_size + in_branch if asker else 0
        if any(f.active_size == size for f in self._open.get(parallel_id, [])):
            # The same block asked again with the same re-entry set: the recursive walk
            # recomputed it forever (a RecursionError). It does re-enter itself.
            assert asker is not None
            asker.context_free = False
            return _reenters(parallel_id)
        if asker:
            asker.lends_active = in_branch
            self._active[asker.parallel_id] += in_branch
        frame = _BlockFrame(parallel_id, self._block(parallel_id), size)
        self._stack.append(frame)
        self._open.setdefault(parallel_id, []).append(frame)
        return None

    def _close_block(self, frame: _BlockFrame) -> None:
        self._stack.pop()
        self._open[frame.parallel_id].pop()
        if self._stack and self._stack[-1].lends_active:
            self._stack[-1].lends_active = False
            self._active[self._stack[-1].parallel_id] -= 1

    def _block(self, parallel_id: str) -> _Steps:
        kind = self.wf.nodes[parallel_id].kind
        assert isinstance(kind, ParallelKind)
        stops: Counter[str] = Counter()
        nested: list[tuple[str, Counter[str]]] = []
        owner: dict[str, str] = {}
        for branch in kind.branches:
            yield from self._walk(branch, branch, stops, nested, owner, in_branch=True)
        # A worklist: the token carrying on from a nested block's own join may open further
        # nested blocks (a join followed by another parallel), whose tokens count here too.
        taken = 0
        while taken < len(nested):
            if taken == self._max_nested:
                raise _Ambiguous(
                    f"parallel {parallel_id!r}: the routes out of its nested joins reach "
                    f"nested blocks more than {taken} times; give each join one way on"
                )
            inner_id, inner = nested[taken]
            taken += 1
            for join_id, n in inner.items():
                if join_id in stops:  # shared with sibling tokens: they all count there
                    stops[join_id] += n
                    self.absorbed.add(inner_id)
                else:  # the nested block's own join: one token carries on from it
                    for nxt in self.exits(join_id):
                        yield from self._walk(nxt, join_id, stops, nested, owner, in_branch=False)
        return stops

    def _walk(
        self,
        start: str,
        branch: str,
        stops: Counter[str],
        nested: list[tuple[str, Counter[str]]],
        owner: dict[str, str],
        in_branch: bool,
    ) -> _WalkSteps:
        """Count where one token from ``start`` stops: at a join, or at a nested block."""
        stop = yield from self._follow(start, branch, owner, in_branch)
        if stop is None:
            return
        if isinstance(self.wf.nodes[stop].kind, JoinKind):
            stops[stop] += 1
        else:
            nested.append((stop, self._closing[stop]))

    def _follow(
        self, start: str, branch: str, owner: dict[str, str], in_branch: bool
    ) -> _FollowSteps:
        """Where a token from ``start`` stops (a join, a nested parallel, or None for `end` or
        a loop back), depth first with an explicit path. Every route out of a node must agree;
        a node already finished is not walked again (``reach`` says where it leads now)."""
        reach = WalkReach()
        path: dict[str, _NodeFrame] = {}
        frames: list[_NodeFrame] = []
        target: str | None = start
        while True:
            if target is not None:
                node_id, target = target, None
                stop: str | None = None
                node = self.wf.nodes.get(node_id)
                if node is None or isinstance(node.kind, TERMINAL_KINDS):
                    pass  # `end` (or a limit): the token leaves the block
                elif node_id in path:  # a loop back: the token leaves through the loop's exit
                    path[node_id].returning.append(frames[-1].node_id)
                elif isinstance(node.kind, JoinKind):
                    stop = node_id
                else:
                    seen = owner.setdefault(node_id, branch)
                    if seen != branch:
                        raise _Ambiguous(
                            f"parallel branches {seen!r} and {branch!r} both reach node "
                            f"{node_id!r} before a join; it would run once per branch "
                            "(route them to a join first)"
                        )
                    if isinstance(node.kind, ParallelKind):
                        if node_id not in self._closing:
                            yield node_id, in_branch
                        stop = node_id
                    elif node_id in reach:
                        stop = reach.leads_to(node_id)
                        reach.routes_into(frames[-1].node_id, node_id)
                    else:
                        pushed = _NodeFrame(node_id, self.exits(node_id))
                        frames.append(pushed)
                        path[node_id] = pushed
                        continue
                if not frames:
                    return stop
                frames[-1].outcomes.append(stop)
            frame = frames[-1]
            if frame.next_exit < len(frame.exits):
                target = frame.exits[frame.next_exit]
                frame.next_exit += 1
                continue
            frames.pop()
            del path[frame.node_id]
            stop = self._agreed(frame.node_id, frame.outcomes)
            reach.finish(frame.node_id, stop, frame.returning)
            if not frames:
                return stop
            frames[-1].outcomes.append(stop)
            reach.routes_into(frames[-1].node_id, frame.node_id)

    def _agreed(self, node_id: str, outcomes: list[str | None]) -> str | None:
        """The one place every route out of ``node_id`` that stops anywhere stops."""
        reaching = [o for o in outcomes if o is not None]
        if not reaching:
            return None
        first = reaching[0]
        for other in reaching[1:]:
            if other != first:
                raise _Ambiguous(
                    f"the routes out of node {node_id!r} bring different tokens to joins "
                    f"({self._tokens_shown(first)} vs {self._tokens_shown(other)})"
                )
        return first

    def _tokens_shown(self, stop: str) -> str:
        """A stop as the join counts it: ``{'merge': 1}``, or ``{}`` for a nested block."""
        return str({stop: 1} if isinstance(self.wf.nodes[stop].kind, JoinKind) else {})


def analyze_parallel_blocks(wf: Workflow) -> tuple[dict[str, int], list[str]]:
    """Arrivals each join waits for (joins with ``wait_for`` excluded), and shape problems."""
    walker = _Walker(wf)
    counts: dict[str, int] = {}
    problems: list[str] = []
    blocks: dict[str, Counter[str]] = {}
    for node in wf.nodes.values():
        if isinstance(node.kind, ParallelKind):
            try:
                blocks[node.id] = walker.block(node.id)
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
