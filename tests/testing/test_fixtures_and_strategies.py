"""The plugin's fixtures as a test uses them directly (the plugin is loaded for the suite by
examples/testing/conftest.py), and what the strategies draw."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from tether import tool
from tether.ir import compile_yaml_file, compile_yaml_text
from tether.testing import strategies as tst
from tether.testing.clock import VirtualClock
from tether.testing.fake_models import FakeReply
from tether.testing.model_player import ModelPlayer
from tether.testing.runtime_under_test import RuntimeUnderTest
from tether.testing.time_driver import finish

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.anyio


@tool
async def lookup(city: str, days: int, metric: bool = True) -> str:
    """Weather for a city."""
    return f"{city}:{days}:{metric}"


MODEL_FLOW = compile_yaml_text(
    """
workflow: {id: ask, version: "1", state_schema: {q: string, answer: string}}
models:
  fast: {provider: openai, model: gpt-4o-mini}
nodes:
  ask: {type: model, model: fast, prompt: "{{ state.q }}", output_key: answer}
""",
    "ask.yaml",
)


async def test_tether_runtime_calls_the_fake_model(
    tether_runtime: RuntimeUnderTest, fake_model: ModelPlayer
) -> None:
    fake_model.play([FakeReply("forty-two")], then=None)
    run = await tether_runtime.start(MODEL_FLOW, {"q": "meaning?"})
    assert (await run.result())["answer"] == "forty-two"
    assert [r.model for r in fake_model.requests] == ["gpt-4o-mini"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=tst.signals(compile_yaml_file(EXAMPLES / "payment.yaml")))
async def test_any_signals_leave_the_payment_example_in_a_state_replay_agrees_with(
    steps: list[tst.Signal], tmp_path: Path
) -> None:
    import sys

    sys.path.insert(0, str(EXAMPLES))
    from tools import pay, refund  # examples/tools.py, as tests/test_examples.py uses it

    from tether.testing.crash_checks import runtime_problems
    from tether.testing.options import TetherOptions

    clock = VirtualClock()
    options = TetherOptions(tools=(pay, refund), storage="memory")
    async with RuntimeUnderTest(options, tmp_path, clock) as rt:
        await rt.begin()
        run = await rt.start(compile_yaml_file(EXAMPLES / "payment.yaml"), {"amount": 5})
        said = await tst.send_signals(rt, run.id, steps, clock)
        assert len(said) == len(steps)
        assert await runtime_problems(rt) == []


def test_tether_dev_serves_the_api_on_loopback(tether_dev: object) -> None:
    url = tether_dev.url  # type: ignore[attr-defined]
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    assert httpx.get(f"{url}/executions", timeout=5).json() is not None


@given(args=tst.tool_arguments(lookup), bad=tst.tool_arguments(lookup, valid=False))
def test_tool_arguments_fit_the_tool_or_do_not(
    args: dict[str, object], bad: dict[str, object]
) -> None:
    assert {"city", "days"} <= set(args) <= {"city", "days", "metric"}
    assert isinstance(args["city"], str) and isinstance(args["days"], int)
    fits = {"city", "days"} <= set(bad) <= {"city", "days", "metric"} and all(
        isinstance(bad[k], t) for k, t in (("city", str), ("days", int)) if k in bad
    )
    assert not fits or isinstance(bad.get("metric", True), str)


@given(tst.model_answers(tools=[lookup, "delete_db"], malformed=0.2, rate_limited=0.2))
def test_model_answers_are_what_the_fake_server_plays(answers: list[object]) -> None:
    from tether.testing.fake_models import FakeFailure

    assert all(isinstance(a, FakeReply | FakeFailure) for a in answers)
    names = {c.name for a in answers if isinstance(a, FakeReply) for c in a.tool_calls}
    assert names <= {"lookup", "delete_db"}


async def test_finish_runs_a_day_of_waiting_in_no_time(tmp_path: Path) -> None:
    from tether.testing.options import TetherOptions

    flow = compile_yaml_text(
        "workflow: {id: nap, version: '1'}\nnodes:\n"
        "  nap: {type: wait, duration: 1d, next: end}\n  end: {type: end}\n",
        "nap.yaml",
    )
    clock = VirtualClock()
    async with RuntimeUnderTest(TetherOptions(storage="memory"), tmp_path, clock) as rt:
        await rt.begin()
        run = await rt.start(flow, {})
        state = await finish(rt, run.id, clock)
    assert state.status == "completed" and clock.monotonic() >= 86_400


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=tst.tool_failures(max_calls=3))
async def test_a_tool_failing_as_planned_is_retried_parked_or_fails_the_run(
    plan: list[tst.ToolOutcome], tmp_path: Path
) -> None:
    from tether.testing.options import TetherOptions

    flaky = tst.failing_as(lookup, plan)
    assert flaky.name == "lookup" and flaky.params == lookup.params
    flow = compile_yaml_text(
        "workflow: {id: look, version: '1', state_schema: {out: string}}\nnodes:\n"
        "  look: {type: tool, tool: lookup, input: {city: Oslo, days: 1}, output_key: out,"
        " retry: {max_attempts: 4}}\n",
        "look.yaml",
    )
    clock = VirtualClock()
    async with RuntimeUnderTest(
        TetherOptions(tools=(flaky,), storage="memory"), tmp_path, clock
    ) as rt:
        await rt.begin()
        run = await rt.start(flow, {})
        state = await finish(rt, run.id, clock)  # backoffs and parks in virtual time
    assert state.status == _expected_status(plan)
    if state.status == "completed":
        assert state.data["out"] == "Oslo:1:True"


def _expected_status(plan: list[tst.ToolOutcome]) -> str:
    """What four attempts of the planned calls come to (a park spends no attempt)."""
    attempts = 0
    for outcome in [*plan, tst.ToolOutcome("ok")]:
        if outcome.kind == "rate_limited":
            continue
        attempts += 1
        if outcome.kind == "ok":
            return "completed"
        if outcome.kind == "permanent" or attempts == 4:
            return "failed"
    raise AssertionError("unreachable: the plan ends with ok")
