"""The edges of a call: Azure's path and headers, Retry-After as a date, 529s, timeouts,
unreachable endpoints, Gemini's retry hint, and keys kept out of error messages."""

from __future__ import annotations

import email.utils

import pytest
from wires import KEY, client_for

from tether.agents.providers import (
    AnthropicClient,
    ModelRequest,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTransient,
    UserMessage,
)
from tether.agents.providers.errors import parse_retry_after
from tether.testing.fake_models import FakeFailure, FakeModelServer, FakeReply
from tether.testing.fake_models.wire import error_body

pytestmark = pytest.mark.anyio
ASK = ModelRequest("my-deployment", (UserMessage("hi"),))


async def test_azure_calls_the_deployment_with_api_version_and_api_key() -> None:
    with FakeModelServer([FakeReply("hi")], api_key=KEY) as srv:
        async with client_for("azure", srv) as client:
            reply = await client.complete(ASK)
    [sent] = srv.requests
    assert (sent.wire, sent.path, sent.model) == (
        "azure", "/openai/deployments/my-deployment/chat/completions", "my-deployment"
    )  # fmt: skip
    assert reply.provider == "azure.ai.openai" and reply.text == "hi"
    assert "api-key" not in sent.headers and "authorization" not in sent.headers  # scrubbed log


def test_retry_after_as_seconds_milliseconds_or_an_http_date() -> None:
    now = 1_767_225_600.0
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now) == 90.0
    assert parse_retry_after({"retry-after": "12"}, now) == 12.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}, now) == 1.5
    assert parse_retry_after({"retry-after": "soon"}, now) is None
    assert parse_retry_after({}, now) is None


async def test_a_529_with_retry_after_parks_and_without_it_is_transient() -> None:
    script = [FakeFailure.overloaded(retry_after=30), FakeFailure.overloaded()]
    with FakeModelServer(script, api_key=KEY) as srv:
        async with client_for("anthropic", srv) as client:
            with pytest.raises(ProviderRateLimited) as parked:
                await client.complete(ASK)
            with pytest.raises(ProviderTransient) as retried:
                await client.complete(ASK)
    assert parked.value.retry_after_secs == 30.0 and parked.value.status == 529
    assert retried.value.status == 529 and "overloaded_error: Overloaded" in str(retried.value)


async def test_gemini_says_when_to_retry_in_its_body() -> None:
    failure = FakeFailure(429, "Resource has been exhausted", retry_after="42")
    assert b"retryDelay" in error_body("gemini", failure)  # in the body only, no header
    with FakeModelServer([failure], api_key=KEY) as srv:
        async with client_for("gemini", srv) as client:
            with pytest.raises(ProviderRateLimited) as caught:
                await client.complete(ASK)
    assert caught.value.retry_after_secs == 42.0


async def test_no_answer_in_time_is_transient() -> None:
    with FakeModelServer([FakeReply("late", delay_secs=1.0)], api_key=KEY) as srv:
        async with client_for("openai", srv, timeout=0.2) as client:
            with pytest.raises(ProviderTransient, match=r"no answer within 0.2s \(127.0.0.1\)"):
                await client.complete(ASK)


async def test_an_unreachable_endpoint_is_transient() -> None:
    with FakeModelServer() as srv:
        url = srv.url
    # Started and stopped: its port is closed now.
    async with AnthropicClient(KEY, base_url=url) as client:
        with pytest.raises(ProviderTransient, match=r"could not reach 127\.0\.0\.1"):
            await client.complete(ASK)


async def test_the_key_is_scrubbed_from_a_providers_error() -> None:
    echo = FakeFailure(401, f"Incorrect API key provided: {KEY}")
    with FakeModelServer([echo]) as srv:
        async with client_for("openai", srv) as client:
            with pytest.raises(ProviderRejected) as caught:
                await client.complete(ASK)
    assert KEY not in str(caught.value) and "Incorrect API key provided: ***" in str(caught.value)
