"""``given_agent_runs``: a property test over agent runs whose model answers hypothesis draws.

Each example plays a drawn script on the fake model server (one server for the whole test),
runs the agent on a fresh runtime under a virtual clock (backoffs and Retry-After waits take
no time), maybe crashes it at a drawn journal position and recovers it, then checks the
properties every agent run has (:mod:`tether.testing.agent_checks`, and replay equals live
state, nothing committed ran again) before the test's own assertions on ``agent_run``.

Example::

    from tether.testing import strategies as tst

    @pytest.mark.tether(tools=[search, delete_db], workflows=["agent.yaml"])
    @tst.given_agent_runs(model=tst.model_answers(tools=["search", "delete_db"]),
                          input={"question": "..."}, max_examples=200)
    async def test_agent_invariants(agent_run):
        assert "delete_db" not in agent_run.tools_run
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.ir.types import AgentKind, Workflow
from tether.testing.agent_checks import agent_problems
from tether.testing.agent_run import AgentRun, run_agent
from tether.testing.clock import VirtualClock
from tether.testing.crash import NO_CUT
from tether.testing.crash_checks import runtime_problems
from tether.testing.fake_models.server import Scripted
from tether.testing.model_player import ModelPlayer
from tether.testing.options import TetherOptions
from tether.testing.runtime_under_test import RuntimeUnderTest

AgentTest = Callable[..., Awaitable[None]]
_BENCH_KEY = pytest.StashKey["AgentBench"]()


def given_agent_runs(
    workflow: Workflow | Path | str | None = None,
    *,
    model: st.SearchStrategy[list[Scripted]],
    input: Mapping[str, Any] | st.SearchStrategy[Mapping[str, Any]] | None = None,
    crash: bool = True,
    max_examples: int = 100,
) -> Callable[[AgentTest], Any]:
    """Run the decorated ``async def test(agent_run, ...)`` once per drawn model script.

    ``workflow``: the agent's workflow (IR or YAML path); by default the first workflow of
    the test's ``tether`` options that has an agent node. ``input``: the run's input, or a
    strategy of inputs (``workflow_inputs(wf)``). ``crash``: also draw a journal position
    to crash at (or none). The test's other arguments are pytest fixtures as usual.
    """
    inputs = input if isinstance(input, st.SearchStrategy) else st.just(dict(input or {}))
    cuts = st.none() | st.integers(0, 40) if crash else st.none()

    def decorate(test: AgentTest) -> Any:
        wanted = [p for p in inspect.signature(test).parameters.values() if p.name != "agent_run"]

        async def agent_example(
            answers: list[Scripted],
            crash_at: int | None,
            run_input: Mapping[str, Any],
            request: pytest.FixtureRequest,
            tmp_path: Path,
            **fixtures: Any,
        ) -> None:
            bench = _bench(request, workflow)
            run = await bench.run(answers, crash_at, run_input, tmp_path)
            assert not run.problems, _said(run)
            passed = {
                p.name: {"request": request, "tmp_path": tmp_path}.get(p.name) for p in wanted
            }
            passed.update(fixtures)
            await test(agent_run=run, **{k: passed[k] for k in (p.name for p in wanted)})

        own = ["request", "tmp_path"]
        params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in own]
        params += [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in wanted if p.name not in own
        ]
        drawn = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY)
                 for n in ("answers", "crash_at", "run_input")]  # fmt: skip
        agent_example.__signature__ = inspect.Signature(drawn + params)  # type: ignore[attr-defined]
        agent_example.__name__ = test.__name__
        agent_example.__qualname__ = test.__qualname__
        agent_example.__module__ = test.__module__
        agent_example.__doc__ = test.__doc__
        checked = settings(
            max_examples=max_examples, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )(given(answers=model, crash_at=cuts, run_input=inputs)(agent_example))  # fmt: skip
        checked_marks: Any = checked  # a plain attribute pytest reads
        checked_marks.pytestmark = list(getattr(test, "pytestmark", ()))  # marks under it stay
        return pytest.mark.anyio(checked)

    return decorate


class AgentBench:
    """What the examples of one test share: the fake model server, the options, the agent."""

    def __init__(self, options: TetherOptions, workflow: Workflow) -> None:
        self.player = ModelPlayer().__enter__()
        self.options = replace(options, model_env=self.player.env())
        self.workflow = workflow
        self._examples = itertools.count(1)

    async def run(
        self, answers: list[Scripted], crash_at: int | None, input: Mapping[str, Any], tmp: Path
    ) -> AgentRun:
        self.player.play(answers)
        clock = VirtualClock()
        directory = tmp / f"example-{next(self._examples)}"
        directory.mkdir()
        async with RuntimeUnderTest(self.options, directory, clock) as rt:
            await rt.begin(NO_CUT if crash_at is None else crash_at)
            run = await run_agent(rt, self.workflow, input, clock)
            run.problems = agent_problems(run) + await runtime_problems(rt)
        run.answers = list(answers)
        return run

    def close(self) -> None:
        self.player.__exit__(None, None, None)


def _bench(request: pytest.FixtureRequest, workflow: Workflow | Path | str | None) -> AgentBench:
    bench: AgentBench | None = request.node.stash.get(_BENCH_KEY, None)
    if bench is None:
        options: TetherOptions = request.getfixturevalue("tether_runtime_options")
        bench = AgentBench(options, _agent_workflow(workflow, options))
        request.node.stash[_BENCH_KEY] = bench
        request.addfinalizer(bench.close)
    return bench


def _agent_workflow(given_wf: Workflow | Path | str | None, options: TetherOptions) -> Workflow:
    if given_wf is not None:
        return replace(options, workflows=(given_wf,)).compiled_workflows()[0]
    for wf in options.compiled_workflows():
        if any(isinstance(n.kind, AgentKind) for n in wf.nodes.values()):
            return wf
    raise pytest.UsageError(
        "given_agent_runs: no agent workflow; pass one (given_agent_runs(wf, ...)) or name it "
        "in @pytest.mark.tether(workflows=[...])"
    )


def _said(run: AgentRun) -> str:
    lines = "\n  ".join(run.problems)
    where = f" (crashed at position {run.crash.position})" if run.crash else ""
    return (
        f"the agent run{where} broke a property every agent run has:\n  {lines}\n"
        f"status {run.status}; tools run {run.tools_run}; records {run.record_types}\n"
        f"the model answered: {run.answers}"
    )
