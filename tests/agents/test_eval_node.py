"""The eval node end to end: a real runtime on a SQLite file, real @tools, and the fake model
server on loopback as the judge (and as the model an eval sends back to work again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.agents.kinds.eval_tool import JudgeAnswerInvalid, parse_judge
from tether.errors import ExecutionFailedError
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowError, WorkflowInvalid
from tether.runtime.records import NodeCompleted, NodeScheduled
from tether.server.views import event_view
from tether.testing import check_replay
from tether.testing.clock import VirtualClock
from tether.testing.fake_models import FakeModelServer, FakeReply

pytestmark = pytest.mark.anyio

MODELS = "models:\n  fast: {provider: openai, model: gpt-4o-mini}\n"


def _runtime(
    tmp_path: Path,
    server: FakeModelServer | None = None,
    tools: list[Any] = (),
    **kw: Any,  # type: ignore[assignment]
) -> Runtime:
    env = server.env("test-key") if server is not None else {}
    url = f"sqlite:///{tmp_path / 'rt.db'}"
    return Runtime(url, tools=list(tools), node_kinds=AgentKinds(env=env), **kw)


@tool
async def echo(text: str) -> str:
    return text


@tool
async def fix(answer: str) -> str:
    return answer + " (fixed)"


def _judge(score: float, reason: str = "ok") -> FakeReply:
    return FakeReply(json.dumps({"score": score, "reason": reason}))


def _with_tool(check: str, extra: str = "") -> Any:
    return compile_yaml_text(
        f"""
workflow: {{id: ev, version: "1"}}
{MODELS}
nodes:
  write: {{tool: echo, output_key: answer, next: check}}
  check: {check}
{extra}
""",
        "ev.yaml",
    )


def _draft_then(check: str, prompt: str = "Write about {{ state.topic }}.") -> Any:
    """A model node writes a draft; the eval ``check`` judges it."""
    return compile_yaml_text(
        f"""
workflow: {{id: draft, version: "1"}}
{MODELS}
nodes:
  draft: {{type: model, model: fast, prompt: "{prompt}", output_key: answer, next: check}}
  check: {check}
""",
        "draft.yaml",
    )


async def _completed(rt: Runtime, run_id: str, node_id: str) -> list[NodeCompleted]:
    return [
        e.record
        for e in await rt.journal(run_id)
        if isinstance(e.record, NodeCompleted) and e.record.node_id == node_id
    ]


# -- each scorer, passing and failing ----------------------------------------------------------

ASSERTION = (
    "{type: eval, scorers: [{type: assertion, expr: \"answer != ''\"}], output_key: verdict}"
)


async def test_an_assertion_passes_and_its_scores_are_in_state_and_the_events(
    tmp_path: Path,
) -> None:
    async with _runtime(tmp_path, tools=[echo]) as rt:
        run = await rt.start(rt.register(_with_tool(ASSERTION)), {"text": "hello"})
        result = await run.result()
        [done] = await _completed(rt, run.id, "check")
        journal = await rt.journal(run.id)
    assert result["verdict"]["passed"] is True
    [score] = result["verdict"]["scores"]
    assert score == {
        "type": "assertion", "passed": True, "score": 1.0, "message": "holds: answer != ''",
        "expr": "answer != ''",
    }  # fmt: skip
    assert done.facts["eval_passed"] is True and done.facts["eval_scores"] == [score]
    event = event_view(next(e for e in journal if e.record == done))
    assert event["kind"]["eval_passed"] is True and event["kind"]["output"]["passed"] is True


async def test_a_failing_assertion_fails_the_run_naming_the_scorer(tmp_path: Path) -> None:
    async with _runtime(tmp_path, tools=[echo]) as rt:
        run = await rt.start(rt.register(_with_tool(ASSERTION)), {"text": ""})
        with pytest.raises(ExecutionFailedError, match="eval 'check' failed: assertion: "
                           "answer != '' does not hold"):  # fmt: skip
            await run.result()
        [done] = await _completed(rt, run.id, "check")
    assert done.facts["eval_passed"] is False


@pytest.mark.parametrize(("max_ms", "passes"), [(5000, True), (1000, False)])
async def test_latency_reads_the_runs_journaled_elapsed_time(
    tmp_path: Path, max_ms: int, passes: bool
) -> None:
    clock = VirtualClock()

    @tool
    async def slow(text: str) -> str:
        clock.advance(2.0)  # two seconds pass while it works
        return text

    wf = compile_yaml_text(
        f"""
workflow: {{id: lat, version: "1"}}
nodes:
  write: {{tool: slow, output_key: answer, next: check}}
  check: {{type: eval, scorers: [{{type: latency, max_ms: {max_ms}}}], output_key: v}}
""",
        "lat.yaml",
    )
    async with _runtime(tmp_path, tools=[slow], clock=clock) as rt:
        run = await rt.start(rt.register(wf), {"text": "x"})
        if passes:
            assert (await run.result())["v"]["scores"][0]["score"] == 2000
        else:
            with pytest.raises(ExecutionFailedError, match=r"latency: 2000 ms elapsed \(max 1000"):
                await run.result()
        await check_replay(rt, run.id)


@pytest.mark.parametrize(("max_usd", "passes"), [(1, True), (0.01, False)])
async def test_cost_reads_what_the_runs_model_calls_cost(
    tmp_path: Path, max_usd: float, passes: bool
) -> None:
    check = f"{{type: eval, scorers: [{{type: cost, max_usd: {max_usd}}}], output_key: v}}"
    # A million input tokens of gpt-4o-mini: $0.15.
    with FakeModelServer([FakeReply("draft", input_tokens=1_000_000, output_tokens=0)]) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check)), {"topic": "tea"})
            if passes:
                [score] = (await run.result())["v"]["scores"]
                assert score["score"] == pytest.approx(0.15)
            else:
                with pytest.raises(ExecutionFailedError, match=r"cost: \$0.150000 spent"):
                    await run.result()


@pytest.mark.parametrize(
    ("min_score", "score", "passes"), [(0.7, 0.9, True), (0.7, 0.4, False), (4, 5, True)]
)
async def test_a_judge_scores_the_node_before_it_on_its_scale_I12(
    tmp_path: Path, min_score: float, score: float, passes: bool
) -> None:
    check = (
        "{type: eval, scorers: [{type: llm_judge, model: fast, rubric: 'Is it sourced?', "
        f"min_score: {min_score}}}], output_key: v}}"
    )
    with FakeModelServer([FakeReply("tea is old [1]"), _judge(score, "cites one")]) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check)), {"topic": "tea"})
            if passes:
                assert (await run.result())["v"]["passed"] is True
            else:
                with pytest.raises(ExecutionFailedError, match=r"llm_judge \(fast\): score 0.4 "
                                   r"\(below the min 0.7, scale 0-1\): cites one"):  # fmt: skip
                    await run.result()
            journal = await rt.journal(run.id)
    sent = server.requests[1].body["messages"]
    scale = "0 to 1" if min_score <= 1 else "1 to 5"
    assert scale in sent[0]["content"] and "Is it sourced?" in sent[1]["content"]
    assert sent[1]["content"].endswith("Output to evaluate:\ntea is old [1]")
    # What the judge was sent was journaled before it was sent, and its cost after.
    handout = next(
        e.record
        for e in journal
        if isinstance(e.record, NodeScheduled) and e.record.node_id == "check"
    )
    assert handout.input["judges"][0]["call"]["messages"] == sent
    done = next(e.record for e in journal if isinstance(e.record, NodeCompleted)
                and e.record.node_id == "check")  # fmt: skip
    assert done.facts["cost_usd"] > 0 and done.facts["gen_ai_model"] == "gpt-4o-mini"


# -- on_fail --------------------------------------------------------------------------------

JUDGE = "{type: llm_judge, model: fast, rubric: 'Is it sourced?', min_score: 0.7}"


async def test_retry_runs_the_node_before_again_and_replay_equals_live_I2(tmp_path: Path) -> None:
    check = f"{{type: eval, scorers: [{JUDGE}], on_fail: retry, output_key: v}}"
    script = [FakeReply("one"), _judge(0.2), FakeReply("two [1]"), _judge(0.9)]
    with FakeModelServer(script) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check)), {"topic": "tea"})
            result = await run.result()
            replayed = await check_replay(rt, run.id)
            drafts = await _completed(rt, run.id, "draft")
            verdicts = await _completed(rt, run.id, "check")
    assert result["answer"] == "two [1]" and result["v"]["passed"] is True
    assert [d.output for d in drafts] == ["one", "two [1]"]
    assert [v.facts["eval_passed"] for v in verdicts] == [False, True]
    assert replayed.eval_retries == {}  # spent retries are forgotten once it passes
    # The retry is a new hand-out of the draft (its prompt sent again on purpose), not a
    # committed call sent twice: each judge call judged another draft.
    assert [d.dispatch for d in drafts] == [1, 2]
    assert len(server.requests) == 4 and len(server.sent_twice()) == 1


async def test_retry_with_feedback_puts_the_failing_scores_in_the_prompt(tmp_path: Path) -> None:
    check = f"{{type: eval, scorers: [{JUDGE}], on_fail: retry_with_feedback}}"
    prompt = "Write about tea. {{ state.__eval_feedback__ | default('') }}"
    script = [FakeReply("one"), _judge(0.2, "no sources"), FakeReply("two [1]"), _judge(0.9)]
    with FakeModelServer(script) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check, prompt)), {"topic": "tea"})
            result = await run.result()
            await check_replay(rt, run.id)
    first, second = server.requests[0].body["messages"], server.requests[2].body["messages"]
    assert first[-1]["content"] == "Write about tea. "
    assert second[-1]["content"] == (
        "Write about tea. The previous attempt did not pass evaluation:\n"
        "- llm_judge (fast): score 0.2 (below the min 0.7, scale 0-1): no sources"
    )
    assert "__eval_feedback__" not in result  # cleared once the eval passed


async def test_on_fail_routes_to_a_node(tmp_path: Path) -> None:
    check = "{type: eval, scorers: [{type: assertion, expr: \"answer == 'done'\"}], on_fail: fix}"
    wf = _with_tool(check, "  fix: {tool: fix, output_key: answer, next: end}")
    async with _runtime(tmp_path, tools=[echo, fix]) as rt:
        run = await rt.start(rt.register(wf), {"text": "draft"})
        assert (await run.result())["answer"] == "draft (fixed)"
        await check_replay(rt, run.id)


async def test_max_retries_spent_fails_the_run_naming_the_scores(tmp_path: Path) -> None:
    check = f"{{type: eval, scorers: [{JUDGE}], on_fail: retry, max_retries: 1}}"
    script = [FakeReply("one"), _judge(0.2, "none"), FakeReply("two"), _judge(0.3, "still none")]
    with FakeModelServer(script) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check)), {"topic": "tea"})
            with pytest.raises(ExecutionFailedError, match=r"eval 'check' failed after 1 retries: "
                               r"llm_judge \(fast\): score 0.3 .*still none"):  # fmt: skip
                await run.result()
            await check_replay(rt, run.id)
    assert len(server.requests) == 4


# -- judges that do not answer with a score --------------------------------------------------


async def test_a_judge_answer_without_a_score_fails_the_attempt_keeping_it(tmp_path: Path) -> None:
    check = f"{{type: eval, scorers: [{JUDGE}], retry: {{max_attempts: 2, delay_ms: 10}}}}"
    script = [FakeReply("one"), FakeReply("Looks good to me!"), FakeReply("a 9/10, honestly")]
    with FakeModelServer(script) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check)), {"topic": "tea"})
            with pytest.raises(ExecutionFailedError, match=r"llm_judge 'fast': expected a JSON "
                               r"object .* the answer was: a 9/10, honestly"):  # fmt: skip
                await run.result()
            failed = [e for e in await rt.journal(run.id) if e.type == "node_failed"]
            await check_replay(rt, run.id)
    assert len(failed) == 2  # both attempts, each answer kept in its record


async def test_a_judge_that_answers_on_its_second_attempt_passes(tmp_path: Path) -> None:
    check = f"{{type: eval, scorers: [{JUDGE}], retry: {{max_attempts: 2, delay_ms: 10}}}}"
    script = [FakeReply("one"), FakeReply('{"score": 7}'), FakeReply('Sure: {"score": 0.8}')]
    with FakeModelServer(script) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check)), {"topic": "tea"})
            await run.result()
            [failed] = [e.record for e in await rt.journal(run.id) if e.type == "node_failed"]
    assert "score 7 is outside the 0-1 scale" in failed.error  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"score": 0.5, "reason": "meh"}', (0.5, "meh")),
        ('```json\n{"score": 4}\n```', (4.0, "")),
        ('My verdict: {"score": "3", "reason": "fine"} -- done', (3.0, "fine")),
    ],
)
def test_judge_answers_are_read_leniently(text: str, expected: tuple[float, str]) -> None:
    assert parse_judge(text, 0, 5, "m") == expected


@pytest.mark.parametrize("text", ['{"score": true}', '{"reason": "x"}', "[1]", '{"score": 9}'])
def test_judge_answers_without_a_score_on_the_scale_are_refused(text: str) -> None:
    with pytest.raises(JudgeAnswerInvalid, match="the answer was"):
        parse_judge(text, 0, 5, "m")


# -- registration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "fragment"),
    [
        ("{type: eval, scorers: [{type: assertion, expr: 'answer =! 1'}]}", "invalid condition"),
        (
            "{type: eval, scorers: [{type: llm_judge, model: nope, rubric: r}]}",
            "eval node 'check': llm_judge model 'nope'",
        ),
        ("{type: eval, scorers: [{type: latency}], on_fail: fixer}", "unknown node 'fixer'"),
    ],
)
async def test_a_bad_eval_is_refused_at_registration_naming_the_node(
    tmp_path: Path, check: str, fragment: str
) -> None:
    async with _runtime(tmp_path, tools=[echo]) as rt:
        with pytest.raises(WorkflowError) as info:
            rt.register(_with_tool(check))
    assert fragment in str(info.value) and "check" in str(info.value)


async def test_a_retry_with_no_single_node_before_it_is_refused(tmp_path: Path) -> None:
    ir = {
        "workflow_id": "lonely", "version": "1", "start_node": "check",
        "nodes": {"check": {"id": "check", "kind": {
            "type": "eval", "scorers": [{"type": "latency"}], "on_fail": "retry",
            "max_retries": 2}}},
        "edges": [{"from": "check", "to": "end"}],
    }  # fmt: skip
    async with _runtime(tmp_path) as rt:
        with pytest.raises(WorkflowInvalid, match="runs the one node before the eval again"):
            rt.register(ir)


async def test_a_cost_budget_refuses_a_judge_model_with_no_price(tmp_path: Path) -> None:
    wf = compile_yaml_text(
        """
workflow: {id: b, version: "1"}
budget: {max_cost_usd: 1}
models:
  local: {provider: openai, model: my-finetune}
nodes:
  write: {tool: echo, output_key: answer, next: check}
  check: {type: eval, scorers: [{type: llm_judge, model: local, rubric: r}]}
""",
        "b.yaml",
    )
    async with _runtime(tmp_path, tools=[echo]) as rt:
        with pytest.raises(WorkflowInvalid, match="cannot count llm_judge model 'my-finetune'"):
            rt.register(wf)


async def test_a_workflow_budget_is_checked_before_the_judge_call_I12(tmp_path: Path) -> None:
    check = f"{{type: eval, scorers: [{JUDGE}]}}"
    text = _draft_yaml(check).replace("nodes:", "budget: {max_cost_usd: 0.01}\nnodes:")
    with FakeModelServer([FakeReply("draft", input_tokens=1_000_000, output_tokens=0)]) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(compile_yaml_text(text, "b.yaml")), {"topic": "t"})
            state = await rt.wait(run.id)
            types = [e.type for e in await rt.journal(run.id)]
    assert state.status == "limit_exceeded" and "budget_exceeded" in types
    assert len(server.requests) == 1  # the judge was never called


def _draft_yaml(check: str) -> str:
    return f"""
workflow: {{id: draft, version: "1"}}
{MODELS}
nodes:
  draft: {{type: model, model: fast, prompt: "Write.", output_key: answer, next: check}}
  check: {check}
"""


async def test_feedback_a_prompt_does_not_place_follows_it(tmp_path: Path) -> None:
    """The jamjet templates' retry_with_feedback prompts never name the feedback: it is
    sent after the prompt, so the retry is not blind."""
    check = f"{{type: eval, scorers: [{JUDGE}], on_fail: retry_with_feedback}}"
    script = [FakeReply("one"), _judge(0.2, "no sources"), FakeReply("two [1]"), _judge(0.9)]
    with FakeModelServer(script) as server:
        async with _runtime(tmp_path, server) as rt:
            run = await rt.start(rt.register(_draft_then(check)), {"topic": "tea"})
            await run.result()
    first, second = server.requests[0].body["messages"], server.requests[2].body["messages"]
    assert first[-1]["content"] == "Write about tea."
    assert second[-1]["content"] == (
        "Write about tea.\n\nThe previous attempt did not pass evaluation:\n"
        "- llm_judge (fast): score 0.2 (below the min 0.7, scale 0-1): no sources"
    )


async def test_retries_are_counted_across_a_continued_segment_and_snapshots_I9(
    tmp_path: Path,
) -> None:
    check = f"{{type: eval, scorers: [{JUDGE}], on_fail: retry, max_retries: 3}}"
    text = _draft_yaml(check).replace('version: "1"', 'version: "1", continue_as_new: '
                                      "{max_records: 10}")  # fmt: skip
    script = [r for s in (0.1, 0.2, 0.3, 0.4) for r in (FakeReply(f"draft {s}"), _judge(s))]
    with FakeModelServer(script) as server:
        async with _runtime(tmp_path, server, snapshot_every=2) as rt:
            run = await rt.start(rt.register(compile_yaml_text(text, "c.yaml")), {})
            with pytest.raises(ExecutionFailedError, match="failed after 3 retries"):
                await run.result()
            segments = [r.execution_id for r in await rt.list_executions()]
            await check_replay(rt, max(segments, key=len))
    assert len(segments) == 2 and len(server.requests) == 8  # one try and three retries
