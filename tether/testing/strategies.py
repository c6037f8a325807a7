"""Hypothesis strategies: inputs that fit a workflow's typed state, what happens to a run
from outside (events, approvals, time), what a model answers, how tools fail; agent property
tests (``given_agent_runs``); and random workflows.

Example::

    from hypothesis import given
    from tether.testing import strategies as tst

    @given(tst.workflow_inputs(my_workflow))
    def test_any_input(input): ...

    @tst.given_agent_runs(model=tst.model_answers(tools=["search", "delete_db"]))
    async def test_agent(agent_run): ...

What each draws: ``workflow_inputs`` (the state schema's required keys, others sometimes),
``signals`` (events for the workflow's wait keys, approvals, clock advances),
``model_answers`` (tool calls with valid or invalid arguments, text, refusals, malformed
JSON, 429s with Retry-After, 500s, timeouts), ``tool_failures`` (per call: ok, transient,
permanent, rate limited).

``random_workflows()`` draws graphs of chains, branches and parallel/join blocks whose work
nodes call the tools in :data:`PROPERTY_TOOLS` on ``n`` or on earlier nodes' outputs;
``modelled_workflows()`` draws them with a model of the final state they must reach. Tether's
own property tests use both.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tether.ir.types import Workflow
from tether.runtime.tools import tool
from tether.testing.agent_given import given_agent_runs
from tether.testing.model_answers import (
    failures,
    model_answers,
    text_answers,
    tool_arguments,
    tool_calls,
)
from tether.testing.signal_strategies import (
    Advance,
    Decision,
    Event,
    ToolOutcome,
    failing_as,
    send_signals,
    signals,
    tool_failures,
)
from tether.testing.workflow_model import (
    MODULUS,
    Branch,
    CondTask,
    ModelledWorkflow,
    Parallel,
    Step,
    Task,
    build_workflow,
    hiccup_value,
    mix_value,
    tasks_of,
)

__all__ = [
    "PROPERTY_TOOLS", "Advance", "Decision", "Event", "ToolOutcome", "failing_as", "failures",
    "given_agent_runs", "model_answers", "modelled_workflows", "random_workflows",
    "reset_property_tools", "send_signals", "signals", "text_answers", "tool_arguments",
    "tool_calls", "tool_failures", "value_for", "workflow_inputs",
]  # fmt: skip

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
    return mix_value(x, salt)


@tool
async def hiccup(x: int, salt: int) -> int:
    """Fails on every odd ``x`` the first time it sees (x, salt) in a process, then succeeds."""
    key = (x, salt)
    if x % 2 and key not in _seen:
        _seen.add(key)
        raise ConnectionError(f"transient failure for {key}")
    return hiccup_value(x, salt)


_seen: set[tuple[int, int]] = set()

#: The tools ``random_workflows`` graphs call; register them with the runtime under test.
PROPERTY_TOOLS = [mix, hiccup]


def reset_property_tools() -> None:
    """Forget which calls ``hiccup`` failed, so every example exercises retries again."""
    _seen.clear()


class _Planner:
    """Draws a plan front to back, so each step knows the keys written before it."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.tasks = 0

    def block(self, depth: int, readable: list[str], min_size: int = 1) -> list[Step]:
        """Steps reading ``readable`` (and what earlier steps of the block write)."""
        readable = list(readable)
        steps: list[Step] = []
        for _ in range(self.draw(st.integers(min_size, 3 if depth <= 0 else 4))):
            # Tasks first: hypothesis shrinks towards plain chains.
            kind = "task" if depth <= 0 else self.draw(st.sampled_from(_KINDS))
            step = self.step(kind, depth, readable)
            steps.append(step)
            readable += [t.key for t in tasks_of([step])]
        return steps

    def step(self, kind: str, depth: int, readable: list[str]) -> Step:
        if kind == "task":
            return self.task(readable)
        if kind == "branch":
            key = self.draw(st.sampled_from(readable))
            threshold = self.draw(_threshold(key))
            yes = self.block(depth - 1, readable, min_size=0)  # an empty arm routes straight on
            return Branch(key, threshold, yes, self.block(depth - 1, readable))
        if kind == "cond":
            task = self.task(readable)
            key = self.draw(st.sampled_from([task.key, *readable]))
            threshold = self.draw(_threshold(key))
            after = [*readable, task.key]
            yes = self.block(depth - 1, after)
            return CondTask(task, key, threshold, yes, self.block(depth - 1, after, min_size=0))
        # Each arm reads only what was written before the block: never a sibling's keys.
        arms = [self.block(depth - 1, readable) for _ in range(self.draw(st.integers(2, 3)))]
        return Parallel(arms, self.draw(st.booleans()))

    def task(self, readable: list[str]) -> Task:
        tool_name = self.draw(st.sampled_from(["mix", "hiccup"]))
        # Mostly an earlier task's output: data flow between nodes is what replay must keep.
        source = self.draw(st.sampled_from(readable[::-1]))
        self.tasks += 1
        return Task(self.tasks - 1, tool_name, source)


_KINDS = ("task", "task", "branch", "cond", "par")


def _threshold(key: str) -> st.SearchStrategy[int]:
    return st.integers(-5, 5) if key == "n" else st.integers(0, MODULUS - 1)


@st.composite
def modelled_workflows(draw: st.DrawFn, max_depth: int = 2) -> ModelledWorkflow:
    """Random workflows with their plan: ``.workflow`` to run, ``.expected_data(input)`` for
    the final state it must reach (see :mod:`tether.testing.workflow_model`).

    Example::

        @given(modelled_workflows(), st.integers(-8, 8))
        def test_it_computes_the_model(model, n):
            ...  # run model.workflow on {"n": n} with PROPERTY_TOOLS
            assert state.data == model.expected_data({"n": n})
    """
    steps = _Planner(draw).block(max_depth, ["n"])
    explicit_end = draw(st.booleans())  # sometimes an end node instead of the pseudo-node
    version = str(draw(st.integers(0, 10**9)))
    workflow = build_workflow(steps, explicit_end=explicit_end, version=version)
    return ModelledWorkflow(workflow, steps)


def random_workflows(max_depth: int = 2) -> st.SearchStrategy[Workflow]:
    """Valid graphs mixing chains, branches and parallel blocks with joins, whose tasks read
    ``n`` or earlier tasks' outputs and write keys of their own."""
    return modelled_workflows(max_depth).map(lambda m: m.workflow)
