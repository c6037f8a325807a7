"""Property: whatever the reflections say, a reflection agent either finishes on the first
passing round (the finalizer's answer) or, its rounds run out, halts ``limit_exceeded`` with
the highest-scored answer (the later on a tie); it never calls more than its graph holds, and
replay equals live (I2)."""

from __future__ import annotations

import json
from pathlib import Path
from tempfile import TemporaryDirectory

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_flows import strategy_flow

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply

verdicts = st.lists(
    st.tuples(st.sampled_from([0.1, 0.5, 0.5, 0.81, 0.9]), st.booleans()), min_size=3, max_size=3
)


@settings(max_examples=12, deadline=None)
@given(rounds=st.integers(1, 3), said=verdicts)
def test_reflection_ends_on_a_pass_or_halts_with_the_best_scored_answer_I2(
    rounds: int, said: list[tuple[float, bool]]
) -> None:
    script: list[FakeReply] = []
    answers: list[str] = []
    passed_at: int | None = None
    for i in range(rounds):
        answers.append(f"answer {i}")
        script.append(FakeReply(answers[-1]))
        score, passed = said[i]
        script.append(FakeReply(json.dumps({"score": score, "passed": passed})))
        if passed:
            passed_at = i
            break
    if passed_at is not None:
        script.append(FakeReply("final"))

    async def scenario(tmp: Path) -> None:
        with FakeModelServer(script, api_key="k") as models:
            kinds = AgentKinds(env=models.env("k"))
            async with Runtime(f"sqlite:///{tmp / 'rt.db'}", node_kinds=kinds) as rt:
                wf = rt.register(strategy_flow("reflection", max_iterations=rounds))
                run = await rt.start(wf, {"topic": "tea"})
                state = await rt.wait(run.id, timeout=30)
                await check_replay(rt, run.id)
            assert len(models.requests) == len(script)  # nothing past the graph or the halt
            assert models.sent_twice() == []
        if passed_at is not None:
            assert state.status == "completed" and state.data["result"] == "final"
            return
        assert state.status == "limit_exceeded"
        scores = [s for s, _ in said[:rounds]]
        best = max(range(rounds), key=lambda i: (scores[i], i))
        assert state.data["result"] == answers[best]
        assert f"returning best-so-far ({scores[best]:.2f})" in (state.error or "")

    with TemporaryDirectory() as tmp:
        anyio.run(scenario, Path(tmp))
