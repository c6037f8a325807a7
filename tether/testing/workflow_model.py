"""Random workflows as plans: the IR Tether runs, and an independent model of what it computes.

A plan is a list of steps (tasks, branches, edge-conditioned tasks, parallel blocks). Every
task reads one state key (``n``, or the output of a task before it) and writes its own key
``k<i>``; branches test keys written before them. :func:`build_workflow` turns a plan into a
graph; :meth:`ModelledWorkflow.expected_data` runs the plan directly, in plain Python, with
none of the runtime's code (no fold, no planner, no conditions engine), so a property can
compare what the runtime computed with what the workflow means.

Data flow stays deterministic: each key has one writer, every key defaults to 0 (a task on a
branch not taken leaves it 0), and a task in a parallel arm reads only keys written before the
block or earlier in its own arm, never a sibling arm's.

Example::

    steps = [Task(0, "mix", "n"), Branch("k0", 50, [Task(1, "hiccup", "k0")], [])]
    model = ModelledWorkflow(build_workflow(steps), steps)
    model.expected_data({"n": 3})      # {'k0': 93, 'k1': 67, 'n': 3}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

#: Outputs stay small so that branch thresholds split them.
MODULUS = 101


def mix_value(x: int, salt: int) -> int:
    """What the ``mix`` property tool returns."""
    return (x * 31 + salt) % MODULUS


def hiccup_value(x: int, salt: int) -> int:
    """What the ``hiccup`` property tool returns once its transient failure is behind it."""
    return (x * 17 + salt) % MODULUS


_VALUES = {"mix": mix_value, "hiccup": hiccup_value}


@dataclass(frozen=True)
class Task:
    """A tool node: ``key = tool(state[source], salt=index)``."""

    index: int
    tool: str
    source: str

    @property
    def node_id(self) -> str:
        return f"t{self.index}"

    @property
    def key(self) -> str:
        return f"k{self.index}"


@dataclass(frozen=True)
class Branch:
    """A branch node: ``yes`` when ``state[key] > threshold``, else ``no``."""

    key: str
    threshold: int
    yes: list[Step]
    no: list[Step]


@dataclass(frozen=True)
class CondTask:
    """A task whose outgoing edges carry the condition (the SDK's form): after ``task``,
    ``yes`` when ``state[key] <= threshold``, else ``no``."""

    task: Task
    key: str
    threshold: int
    yes: list[Step]
    no: list[Step]


@dataclass(frozen=True)
class Parallel:
    """A parallel block whose arms meet at a join (naming its arrivals when ``wait_for``)."""

    arms: list[list[Step]]
    wait_for: bool


Step = Task | Branch | CondTask | Parallel


def tasks_of(steps: list[Step]) -> list[Task]:
    """Every task of a plan, in plan order."""
    out: list[Task] = []
    for step in steps:
        if isinstance(step, Task):
            out.append(step)
        elif isinstance(step, Branch):
            out += tasks_of(step.yes) + tasks_of(step.no)
        elif isinstance(step, CondTask):
            out += [step.task, *tasks_of(step.yes), *tasks_of(step.no)]
        else:
            for arm in step.arms:
                out += tasks_of(arm)
    return out


def state_schema(steps: list[Step]) -> dict[str, StateField]:
    """``n`` (required) and one integer key per task, defaulting to 0."""
    schema = {"n": StateField(type="integer", required=True)}
    for task in tasks_of(steps):
        schema[task.key] = StateField(type="integer", default=0)
    return schema


@dataclass(frozen=True)
class ModelledWorkflow:
    """A random workflow and the plan it was built from."""

    workflow: Workflow
    steps: list[Step]

    def expected_data(self, input: Mapping[str, Any]) -> dict[str, Any]:
        """The final state the workflow must reach from ``input``, computed from the plan."""
        data: dict[str, Any] = {k: f.default for k, f in state_schema(self.steps).items()}
        del data["n"]
        data.update(input)
        _run(self.steps, data)
        return data


def _run(steps: list[Step], data: dict[str, Any]) -> None:
    for step in steps:
        if isinstance(step, Task):
            data[step.key] = _VALUES[step.tool](data[step.source], step.index)
        elif isinstance(step, Branch):
            _run(step.yes if data[step.key] > step.threshold else step.no, data)
        elif isinstance(step, CondTask):
            _run([step.task], data)
            _run(step.yes if data[step.key] <= step.threshold else step.no, data)
        else:
            for arm in step.arms:  # arms share no keys, so any order gives the same data
                _run(arm, data)


# -- the IR ------------------------------------------------------------------------------------


@dataclass
class _Builder:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{len(self.nodes)}"


def build_workflow(
    steps: list[Step], *, explicit_end: bool = False, version: str = "1"
) -> Workflow:
    """The graph of a plan; ``explicit_end`` ends at an end node instead of the pseudo-node."""
    b = _Builder()
    exit_to = END
    if explicit_end:
        b.nodes["finish"] = Node(id="finish", kind=EndKind())
        exit_to = "finish"
    start = _emit(b, steps, exit_to)
    return Workflow(
        workflow_id="random",
        version=version,
        start_node=start,
        nodes=b.nodes,
        edges=b.edges,
        state_schema=state_schema(steps),
    )


def _emit(b: _Builder, steps: list[Step], exit_to: str) -> str:
    """Add ``steps``' nodes routing to ``exit_to``; return the id of its entry node."""
    entry = exit_to
    for step in reversed(steps):
        entry = _emit_step(b, step, entry)
    return entry


def _emit_step(b: _Builder, step: Step, next_id: str) -> str:
    if isinstance(step, Task):
        b.nodes[step.node_id] = Node(
            id=step.node_id,
            kind=ToolKind(tool_ref=step.tool),
            input={"x": f"${step.source}", "salt": step.index},
            output_key=step.key,
            retry_policy=RetryPolicy(max_attempts=3, backoff_initial_secs=0, jitter=0),
        )
        b.edges.append(Edge(from_=step.node_id, to=next_id))
        return step.node_id
    if isinstance(step, Branch):
        node_id = b.new_id("b")
        b.nodes[node_id] = Node(id=node_id, kind=BranchKind())  # placeholder, replaced below
        yes = _emit(b, step.yes, next_id)
        no = _emit(b, step.no, next_id)
        when = f"{step.key} > {step.threshold}"
        b.nodes[node_id] = Node(
            id=node_id, kind=BranchKind(cases=[BranchCase(to=yes, when=when)], default=no)
        )
        return node_id
    if isinstance(step, CondTask):
        node_id = _emit_step(b, step.task, next_id)
        yes = _emit(b, step.yes, next_id)
        no = _emit(b, step.no, next_id)
        b.edges[:] = [e for e in b.edges if e.from_ != node_id]
        b.edges.append(Edge(from_=node_id, to=yes, condition=f"{step.key} <= {step.threshold}"))
        b.edges.append(Edge(from_=node_id, to=no))
        return node_id
    node_id = b.new_id("p")
    b.nodes[node_id] = Node(id=node_id, kind=ParallelKind(branches=[]))
    join_id = b.new_id("j")
    b.nodes[join_id] = Node(id=join_id, kind=JoinKind())
    b.edges.append(Edge(from_=join_id, to=next_id))
    entries = [_emit(b, arm, join_id) for arm in step.arms]
    b.nodes[node_id] = Node(id=node_id, kind=ParallelKind(branches=entries))
    lasts = [_last_task(b, entry, join_id) for entry in entries]
    if step.wait_for and all(lasts):  # name the arrivals explicitly when each arm's last is fixed
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
