"""Each client against the fake model server, in its own wire format: plain completions, tool
calls and their results, usage, and what every kind of failure comes to."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from wires import KEY, PROVIDER, WIRES, client_for

from tether.agents.providers import (
    AssistantMessage,
    MalformedAnswer,
    ModelReply,
    ModelRequest,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTransient,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)
from tether.errors import NonRetryableError, RateLimited
from tether.testing.fake_models import FakeFailure, FakeModelServer, FakeReply, FakeToolCall

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("wire", WIRES)]

WEATHER = ToolSpec(
    "weather",
    "Current weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASK = ModelRequest(
    "some-model",
    (SystemMessage("Be brief."), UserMessage("What is 2+2?")),
    temperature=0.0,
    max_output_tokens=64,
)


async def _call(wire: str, server: FakeModelServer, request: ModelRequest = ASK) -> ModelReply:
    async with client_for(wire, server) as client:
        return await client.complete(request)


async def test_plain_completion(wire: str) -> None:
    with FakeModelServer([FakeReply("4", input_tokens=21, output_tokens=1)], api_key=KEY) as srv:
        reply = await _call(wire, srv)
    assert (reply.text, reply.tool_calls, reply.finish_reason) == ("4", (), "stop")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (21, 1)
    assert (reply.provider, reply.model) == (PROVIDER[wire], "some-model")
    assert '"4"' in reply.raw and reply.duration_ms >= 0
    [sent] = srv.requests
    assert sent.model == "some-model"
    assert _system_prompt(wire, sent.body) == "Be brief."
    assert "What is 2+2?" in str(sent.body)


def _system_prompt(wire: str, body: dict[str, Any]) -> str:
    if wire == "anthropic":
        return str(body["system"])
    if wire == "gemini":
        return str(body["systemInstruction"]["parts"][0]["text"])
    assert body["messages"][0]["role"] == "system"
    return str(body["messages"][0]["content"])


async def test_tool_call_and_its_result_round_trip(wire: str) -> None:
    script = [
        FakeReply(tool_calls=(FakeToolCall("weather", {"city": "Oslo"}, id="call_a"),)),
        FakeReply("Sunny in Oslo."),
    ]
    with FakeModelServer(script, api_key=KEY) as srv:
        ask = ModelRequest("some-model", (UserMessage("Weather in Oslo?"),), tools=(WEATHER,))
        first = await _call(wire, srv, ask)
        assert first.finish_reason == "tool_calls"
        [call] = first.tool_calls
        assert (call.name, call.arguments) == ("weather", {"city": "Oslo"})
        follow = ModelRequest(
            "some-model",
            (
                *ask.messages,
                AssistantMessage(tool_calls=first.tool_calls),
                ToolResultMessage(call.id, "sunny, 18C"),
            ),
            tools=(WEATHER,),
        )
        second = await _call(wire, srv, follow)
    assert (second.text, second.finish_reason) == ("Sunny in Oslo.", "stop")
    asked, answered = srv.requests
    assert "weather" in str(_tools(wire, asked.body))
    _assert_result_sent(wire, answered.body, call)
    assert not srv.sent_twice()


def _tools(wire: str, body: dict[str, Any]) -> Any:
    return body["tools"]


def _assert_result_sent(wire: str, body: dict[str, Any], call: ToolCall) -> None:
    """The follow-up carries the call and its result, each in the wire's own shape."""
    if wire == "anthropic":
        _, assistant, result = body["messages"]
        assert assistant["content"][0] == {
            "type": "tool_use", "id": call.id, "name": "weather", "input": {"city": "Oslo"}
        }  # fmt: skip
        assert result["role"] == "user"
        assert result["content"][0]["tool_use_id"] == call.id
        assert result["content"][0]["content"] == "sunny, 18C"
    elif wire == "gemini":
        _, model, result = body["contents"]
        assert model["parts"][0]["functionCall"] == {"name": "weather", "args": {"city": "Oslo"}}
        response = result["parts"][0]["functionResponse"]
        assert response == {"name": "weather", "response": {"result": "sunny, 18C"}}
    else:
        _, assistant, result = body["messages"]
        assert assistant["tool_calls"][0]["function"]["name"] == "weather"
        assert assistant["tool_calls"][0]["function"]["arguments"] == '{"city":"Oslo"}'
        assert result == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 18C"}


E = TypeVar("E", bound=Exception)


async def _failure(
    wire: str, answer: list[FakeFailure], expected: type[E], server_key: str = KEY
) -> E:
    with FakeModelServer(answer, api_key=server_key) as srv, pytest.raises(expected) as caught:
        await _call(wire, srv)
    return caught.value


async def test_429_is_rate_limited_with_the_retry_after_seconds(wire: str) -> None:
    error = await _failure(wire, [FakeFailure.rate_limited(17)], ProviderRateLimited)
    assert error.retry_after_secs == 17.0 and error.status == 429
    assert isinstance(error, RateLimited) and error.retry_after == 17.0  # the runtime parks


async def test_500_is_transient(wire: str) -> None:
    error = await _failure(wire, [FakeFailure.server_error()], ProviderTransient)
    assert error.status == 500
    assert not isinstance(error, NonRetryableError | RateLimited)


async def test_a_bad_key_is_rejected_with_the_providers_words(wire: str) -> None:
    error = await _failure(wire, [], ProviderRejected, server_key="sk-another-key-42")
    said = {
        "openai": "Incorrect API key provided",
        "azure": "Access denied due to invalid subscription key",
        "anthropic": "invalid x-api-key",
        "gemini": "API key not valid",
    }[wire]
    message = str(error)
    assert said in message and "\n" not in message
    assert message.startswith(f"{PROVIDER[wire]} rejected the call (4")
    assert isinstance(error, NonRetryableError)


async def test_an_unparseable_answer_is_malformed_with_the_raw_kept(wire: str) -> None:
    error = await _failure(wire, [FakeFailure.malformed("<html>oops</html>")], MalformedAnswer)
    assert error.raw == "<html>oops</html>"
    assert "not JSON" in str(error)


async def test_unexpected_json_is_malformed_and_says_where(wire: str) -> None:
    body = '{"choices": 3, "content": 3, "candidates": 3}'
    error = await _failure(wire, [FakeFailure(200, body=body)], MalformedAnswer)
    assert error.raw == body
    assert "unexpected answer" in str(error) and "$." in str(error)
