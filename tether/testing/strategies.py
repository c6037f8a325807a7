"""Hypothesis strategies: inputs that fit a workflow's typed state, and random workflows.

Example::

    from hypothesis import given
    from tether.testing.strategies import workflow_inputs

    @given(workflow_inputs(my_workflow))
    def test_any_input(input): ...

``random_workflows()`` draws graphs of chains, branches and parallel/join blocks whose work
nodes call the tools in :data:`PROPERTY_TOOLS`; Tether's own property tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    RetryPolicy,
    StateField,
    ToolKind,
    Workflow,
)
from tether.runtime.tools import tool

_JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=20)


def value_for(type_name: str) -> st.SearchStrategy[Any]:
    """Values of one state type (``integer``, ``string``, ..., ``any``)."""
    simple: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=40),
        "integer": st.integers(-(2**53), 2**53),
        "number": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000),
        "boolean": st.booleans(),
        "null": st.none(),
        "array": st.lists(_JSON_SCALARS, max_size=5),
        "object": st.dictionaries(st.text(max_size=8), _JSON_SCALARS, max_size=5),
    }
    return simple.get(type_name, _JSON_SCALARS)


def workflow_inputs(
    workflow: Workflow, *, optional: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """Inputs that fit ``workflow``'s typed state: required keys always, others sometimes."""
    schema = workflow.typed_schema()
    required = {k: value_for(f.type) for k, f in schema.items() if f.required}
    others = {k: value_for(f.type) for k, f in schema.items() if not f.required}
    if not optional:
        others = {}
    return st.fixed_dictionaries(required, optional=others)


# -- random workflows ------------------------------------------------------------------------


@tool
async def mix(x: int, salt: int) -> int:
    """A deterministic step: the same input always gives the same output."""
    return (x * 31 + salt) % 1_000_003


@tool
async def hiccup(x: int, salt: int) -> int:
    """Fails on every odd ``x`` the first time it sees (x, salt) in a process, then succeeds."""
    key = (x, salt)
    if x % 2 and key not in _seen:
        _seen.add(key)
        raise ConnectionError(f"transient failure for {key}")
    return (x * 17 + salt) % 1_000_003


_seen: set[tuple[int, int]] = set()

#: The tools ``random_workflows`` graphs call; register them with the runtime under test.
PROPERTY_TOOLS = [mix, hiccup]


def reset_property_tools() -> None:
    """Forget which calls ``hiccup`` failed, so every example exercises retries again."""
    _seen.clear()


@dataclass
class _Builder:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{len(self.nodes)}"


# ("task", tool) | ("branch", threshold, block, block) | ("cond", threshold, block, block)
# | ("par", [blocks], explicit_wait_for)
_Block = list[Any]


def _blocks(depth: int, min_size: int = 1) -> st.SearchStrategy[_Block]:
    task = st.tuples(st.just("task"), st.sampled_from(["mix", "hiccup"]))
    if depth <= 0:
        return st.lists(task, min_size=min_size, max_size=3)
    inner = _blocks(depth - 1)
    maybe_empty = _blocks(depth - 1, min_size=0)  # an empty arm routes straight on (to a join)
    branch = st.tuples(st.just("branch"), st.integers(-5, 5), maybe_empty, inner)
    cond = st.tuples(st.just("cond"), st.integers(-5, 5), inner, maybe_empty)
    par = st.tuples(st.just("par"), st.lists(inner, min_size=2, max_size=3), st.booleans())
    return st.lists(st.one_of(task, task, branch, cond, par), min_size=min_size, max_size=4)


def _emit(b: _Builder, block: _Block, exit_to: str) -> str:
    """Add ``block``'s nodes routing to ``exit_to``; return the id of its entry node."""
    entry = exit_to
    for item in reversed(block):
        entry = _emit_item(b, item, entry)
    return entry


def _emit_item(b: _Builder, item: Any, next_id: str) -> str:
    kind = item[0]
    if kind == "task":
        node_id = b.new_id("t")
        salt = len(b.nodes)
        b.nodes[node_id] = Node(
            id=node_id,
            kind=ToolKind(tool_ref=item[1]),
            input={"x": "$n", "salt": salt},
            retry_policy=RetryPolicy(max_attempts=3, backoff_initial_secs=0, jitter=0),
        )
        b.edges.append(Edge(from_=node_id, to=next_id))
        return node_id
    if kind == "branch":
        node_id = b.new_id("b")
        b.nodes[node_id] = Node(id=node_id, kind=BranchKind())  # placeholder, replaced below
        yes = _emit(b, item[2], next_id)
        no = _emit(b, item[3], next_id)
        b.nodes[node_id] = Node(
            id=node_id,
            kind=BranchKind(cases=[BranchCase(to=yes, when=f"n > {item[1]}")], default=no),
        )
        return node_id
    if kind == "cond":  # a task whose outgoing edges carry the condition (the SDK's form)
        node_id = _emit_item(b, ("task", "mix"), next_id)
        yes = _emit(b, item[2], next_id)
        no = _emit(b, item[3], next_id)
        b.edges[:] = [e for e in b.edges if e.from_ != node_id]
        b.edges.append(Edge(from_=node_id, to=yes, condition=f"n <= {item[1]}"))
        b.edges.append(Edge(from_=node_id, to=no))
        return node_id
    node_id = b.new_id("p")
    b.nodes[node_id] = Node(id=node_id, kind=ParallelKind(branches=[]))
    join_id = b.new_id("j")
    b.nodes[join_id] = Node(id=join_id, kind=JoinKind())
    b.edges.append(Edge(from_=join_id, to=next_id))
    arms = [(sub, _emit(b, sub, join_id)) for sub in item[1]]
    b.nodes[node_id] = Node(id=node_id, kind=ParallelKind(branches=[e for _, e in arms]))
    lasts = [_last_task(b, entry, join_id) for _, entry in arms]
    if item[2] and all(lasts):  # name the arrivals explicitly when each arm's last is fixed
        b.nodes[join_id] = Node(id=join_id, kind=JoinKind(wait_for=[x for x in lasts if x]))
    return node_id


def _last_task(b: _Builder, entry: str, join_id: str) -> str | None:
    """The one node of a plain chain that routes into ``join_id``, if the arm is a chain."""
    node_id = entry
    for _ in range(len(b.nodes)):
        node = b.nodes.get(node_id)
        if node is None or not isinstance(node.kind, ToolKind):
            return None
        outs = [e for e in b.edges if e.from_ == node_id]
        if len(outs) != 1:
            return None
        if outs[0].to == join_id:
            return node_id
        node_id = outs[0].to
    return None


@st.composite
def random_workflows(draw: st.DrawFn, max_depth: int = 2) -> Workflow:
    """Valid graphs mixing chains, branches on ``n`` and parallel blocks with joins."""
    block = draw(_blocks(max_depth))
    b = _Builder()
    exit_to = END
    if draw(st.booleans()):  # sometimes an explicit end node instead of the pseudo-node
        b.nodes["finish"] = Node(id="finish", kind=EndKind())
        exit_to = "finish"
    start = _emit(b, block, exit_to)
    return Workflow(
        workflow_id="random",
        version=str(draw(st.integers(0, 10**9))),
        start_node=start,
        nodes=b.nodes,
        edges=b.edges,
        state_schema={"n": StateField(type="integer", required=True)},
    )
