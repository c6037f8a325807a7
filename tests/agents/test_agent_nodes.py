"""Model, agent and http nodes end to end: a real runtime on a SQLite file, the fake model
server on loopback speaking each provider's wire format, real @tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.errors import ExecutionFailedError
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.testing import check_replay
from tether.testing.fake_models import FakeFailure, FakeModelServer, FakeReply, FakeToolCall

pytestmark = pytest.mark.anyio

PLAN = """
workflow: {{id: plan, version: "1"}}
models:
  fast: {{provider: {provider}, model: {model}}}
nodes:
  plan: {{type: model, model: fast, system: "You plan.", prompt: "Plan for: {{{{ state.query }}}}",
          output_key: plan, retry: {{max_attempts: 3, delay_ms: 10}}, next: end}}
"""

AGENT = """
workflow: {id: research, version: "1"}
models:
  smart: {provider: openai, model: gpt-4o-mini}
nodes:
  work:
    type: agent
    model: smart
    instructions: "Answer using the tools."
    prompt: "{{ state.question }}"
    tools: [weather]
    budget: {max_iterations: 4}
    output_key: answer
    next: end
"""


def _runtime(tmp_path: Path, server: FakeModelServer, tools: list[Any] = ()) -> Runtime:  # type: ignore[assignment]
    url = f"sqlite:///{tmp_path / 'rt.db'}"
    return Runtime(url, tools=list(tools), node_kinds=AgentKinds(env=server.env("test-key")))


@pytest.mark.parametrize(
    ("provider", "model", "system"),
    [
        ("openai", "gpt-4o-mini", "openai"),
        ("anthropic", "claude-sonnet-4-5", "anthropic"),
        ("gemini", "gemini-2.5-flash", "gcp.gemini"),
    ],
)
async def test_a_model_node_calls_each_provider_and_records_its_facts(
    tmp_path: Path, provider: str, model: str, system: str
) -> None:
    reply = FakeReply("1. read 2. write", input_tokens=1000, output_tokens=200)
    with FakeModelServer([reply], api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            wf = rt.register(compile_yaml_text(PLAN.format(provider=provider, model=model), "p"))
            run = await rt.start(wf, {"query": "a blog"})
            assert (await run.result())["plan"] == "1. read 2. write"
            journal = await rt.journal(run.id)
    [sent] = server.requests
    assert "Plan for: a blog" in json.dumps(sent.body)
    scheduled = next(e.record for e in journal if e.type == "node_scheduled")
    assert scheduled.input["messages"][-1]["content"] == "Plan for: a blog"  # type: ignore[union-attr]
    done = next(e.record for e in journal if e.type == "node_completed")
    facts = done.facts  # type: ignore[union-attr]
    assert facts["gen_ai_system"] == system
    assert (facts["input_tokens"], facts["output_tokens"]) == (1000, 200)
    assert facts["cost_usd"] > 0 and facts["finish_reason"] == "stop"


async def test_a_429_parks_without_spending_an_attempt_and_a_500_retries_I5(tmp_path: Path) -> None:
    script = [FakeFailure.rate_limited(retry_after=0), FakeFailure.server_error(), FakeReply("ok")]
    with FakeModelServer(script, api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            text = PLAN.format(provider="openai", model="gpt-4o-mini")
            run = await rt.start(rt.register(compile_yaml_text(text, "p")), {"query": "q"})
            assert (await run.result())["plan"] == "ok"
            types = [(e.type, getattr(e.record, "attempt", None)) for e in await rt.journal(run.id)]
    assert ("node_parked", 1) in types
    assert ("node_failed", 1) in types
    assert ("node_completed", 2) in types  # the park spent no attempt; the 500 spent one


FALLBACK = """
workflow: {id: fallback, version: "1"}
models:
  fast:  {provider: openai, model: gpt-4o-mini, cost: {input: 0.15, output: 0.6}}
  smart: {provider: openai, model: gpt-4o, fallback: fast}
nodes:
  plan: {type: model, model: smart, prompt: "Plan for: {{ state.query }}", output_key: plan,
         retry: {max_attempts: 2, delay_ms: 10}, next: end}
"""


async def test_a_transient_failure_falls_back_to_the_next_model_in_the_same_attempt(
    tmp_path: Path,
) -> None:
    script = [
        FakeFailure.server_error(),  # smart, attempt 1
        FakeReply("from fast", input_tokens=1_000_000),  # fast, attempt 1
        FakeFailure.rate_limited(retry_after=0),  # smart, attempt 2 (of the next run): parks
        FakeReply("smart again"),
    ]
    with FakeModelServer(script, api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            wf = rt.register(compile_yaml_text(FALLBACK, "f.yaml"))
            run = await rt.start(wf, {"query": "q"})
            assert (await run.result())["plan"] == "from fast"
            journal = await rt.journal(run.id)
            second = await rt.start(wf, {"query": "q2"})
            assert (await second.result())["plan"] == "smart again"
    [done] = [e.record for e in journal if e.type == "node_completed"]
    facts = done.facts  # type: ignore[union-attr]
    assert (facts["gen_ai_model"], facts["fallback_from"]) == ("gpt-4o-mini", "smart")
    assert round(facts["cost_usd"], 4) == 0.15  # the fallback's own price
    assert [e.type for e in journal].count("node_failed") == 0  # one attempt, two models
    assert [r.body["model"] for r in server.requests] == [
        "gpt-4o", "gpt-4o-mini", "gpt-4o", "gpt-4o",
    ]  # fmt: skip  # a 429 parks for the same model; it does not fall back
    [scheduled] = [e.record for e in journal if e.type == "node_scheduled"]
    assert [f["model"] for f in scheduled.input["fallbacks"]] == ["fast"]  # type: ignore[union-attr]


def test_a_call_with_fallbacks_projects_the_dearest_models_cost_for_the_budget_I12() -> None:
    """The budget is checked before the call, not knowing which model will answer."""
    from tether.agents.kinds.model_calls import call_args, model_spec
    from tether.agents.kinds.model_fallback import with_fallbacks
    from tether.agents.providers.costs import CostTable

    text = """
workflow: {id: f, version: "1"}
models:
  dear:  {provider: openai, model: gpt-4o, cost: {input: 100, output: 100}}
  cheap: {provider: openai, model: gpt-4o-mini, cost: {input: 0.1, output: 0.1}, fallback: dear}
nodes:
  a: {type: model, model: cheap, prompt: "x", output_key: a, next: end}
"""
    wf = compile_yaml_text(text, "f.yaml")
    messages = [{"role": "user", "content": "x" * 400}]
    costs = CostTable()
    alone = call_args(model_spec(wf, "cheap"), messages, (), None, 10, None, "value", costs)
    chained = with_fallbacks(wf, dict(alone), costs)
    assert chained["projected_cost_usd"] > alone["projected_cost_usd"]
    assert chained["projected_cost_usd"] == round(alone["projected_tokens"] * 100 / 1e6, 8)


async def test_a_bad_key_fails_the_run_saying_what_the_provider_said(tmp_path: Path) -> None:
    with FakeModelServer([FakeReply("never")], api_key="the-real-key") as server:
        async with _runtime(tmp_path, server) as rt:
            text = PLAN.format(provider="openai", model="gpt-4o-mini")
            run = await rt.start(rt.register(compile_yaml_text(text, "p")), {"query": "q"})
            with pytest.raises(ExecutionFailedError, match="401"):
                await run.result()
            failed = [e for e in await rt.journal(run.id) if e.type == "node_failed"]
    assert len(failed) == 1  # not retried: a bad key does not get better


def _weather_tool(calls: list[str]) -> Any:
    @tool
    async def weather(city: str) -> dict[str, Any]:
        """Current weather in a city."""
        calls.append(city)
        return {"city": city, "sky": "sunny"}

    return weather


async def test_an_agent_calls_its_tool_and_answers_each_call_a_step(tmp_path: Path) -> None:
    calls: list[str] = []
    script = [
        FakeReply(tool_calls=(FakeToolCall("weather", {"city": "Oslo"}, id="c1"),)),
        FakeReply("It is sunny in Oslo.", input_tokens=50, output_tokens=9),
    ]
    with FakeModelServer(script, api_key="test-key") as server:
        async with _runtime(tmp_path, server, [_weather_tool(calls)]) as rt:
            wf = rt.register(compile_yaml_text(AGENT, "a.yaml"))
            run = await rt.start(wf, {"question": "Weather in Oslo?"})
            assert (await run.result())["answer"] == "It is sunny in Oslo."
            journal = await rt.journal(run.id)
            await check_replay(rt, run.id)
    assert calls == ["Oslo"]
    calls_made = [e.record.input.get("call") for e in journal if e.type == "node_scheduled"]  # type: ignore[union-attr]
    assert calls_made == ["model", "tool", "model"]
    second = server.requests[1].body["messages"]
    assert any(m.get("role") == "tool" and "sunny" in m.get("content", "") for m in second)
    assert server.sent_twice() == []


async def test_a_tool_off_the_allow_list_never_runs_and_the_run_goes_on_I12(tmp_path: Path) -> None:
    side_effect = tmp_path / "dropped.txt"

    @tool
    async def delete_db() -> str:
        side_effect.write_text("dropped")
        return "done"

    script = [
        FakeReply(tool_calls=(FakeToolCall("delete_db", {}, id="x1"),)),
        FakeReply("I cannot do that."),
    ]
    with FakeModelServer(script, api_key="test-key") as server:
        async with _runtime(tmp_path, server, [_weather_tool([]), delete_db]) as rt:
            run = await rt.start(rt.register(compile_yaml_text(AGENT, "a")), {"question": "?"})
            assert (await run.result())["answer"] == "I cannot do that."
            journal = await rt.journal(run.id)
    assert not side_effect.exists()
    [violation] = [e.record for e in journal if e.type == "policy_violation"]
    assert violation.tool == "delete_db" and "allow-list" in violation.rule  # type: ignore[union-attr]
    told = server.requests[1].body["messages"]
    assert any("not available" in str(m.get("content")) for m in told)


async def test_a_budget_breach_halts_with_limit_exceeded_and_the_best_answer(
    tmp_path: Path,
) -> None:
    text = AGENT.replace("max_iterations: 4", "max_iterations: 1")
    script = [FakeReply("Let me check.", tool_calls=(FakeToolCall("weather", {"city": "Rome"}),))]
    with FakeModelServer(script, api_key="test-key") as server:
        async with _runtime(tmp_path, server, [_weather_tool([])]) as rt:
            run = await rt.start(rt.register(compile_yaml_text(text, "a")), {"question": "?"})
            state = await rt.wait(run.id)
            journal = await rt.journal(run.id)
    assert state.status == "limit_exceeded"
    assert state.data["answer"] == "Let me check."
    [breach] = [e.record for e in journal if e.type == "budget_exceeded"]
    assert breach.limit == "iterations"  # type: ignore[union-attr]
    assert len(server.requests) == 1  # the call past the budget was never made


async def test_unknown_tools_models_and_template_variables_are_refused_at_registration(
    tmp_path: Path,
) -> None:
    bad = """
workflow: {id: bad, version: "1", state_schema: {question: string}}
nodes:
  work: {type: agent, model: gpt-4o-mini, prompt: "{{ state.qestion }}", tools: [web_serch],
         next: think}
  think: {type: model, model: llama-unknown, prompt: hi, next: end}
"""
    with FakeModelServer([], api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            with pytest.raises(WorkflowInvalid) as caught:
                rt.register(compile_yaml_text(bad, "bad.yaml"))
    message = str(caught.value)
    assert "web_serch" in message and "state.qestion" in message and "llama-unknown" in message


async def test_an_http_node_fills_its_header_where_it_runs_and_never_journals_it_I14(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str]] = []

    class Items(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization", "")))
            body = json.dumps({"id": self.path.rsplit("/", 1)[-1], "name": "lamp"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Items)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("ITEMS_TOKEN", "tok-very-secret")
    text = f"""
workflow: {{id: fetch, version: "1"}}
nodes:
  fetch: {{type: http, url: "http://127.0.0.1:{httpd.server_port}/items/{{{{ state.id }}}}",
          headers: {{Authorization: "Bearer ${{ITEMS_TOKEN}}"}}, output_key: item, next: end}}
"""
    try:
        with FakeModelServer([], api_key="test-key") as server:
            async with _runtime(tmp_path, server) as rt:
                run = await rt.start(rt.register(compile_yaml_text(text, "f.yaml")), {"id": 7})
                item = (await run.result())["item"]
                journal = await rt.journal(run.id)
    finally:
        httpd.shutdown()
    assert item["status"] == 200 and item["body"] == {"id": "7", "name": "lamp"}
    assert seen == [("/items/7", "Bearer tok-very-secret")]
    assert "tok-very-secret" not in repr([e.record for e in journal])
    assert (tmp_path / "rt.db").read_bytes().find(b"tok-very-secret") == -1
