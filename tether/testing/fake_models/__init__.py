"""A fake model server for tests: real HTTP on 127.0.0.1, speaking the wire formats of OpenAI
(and Azure OpenAI), Anthropic and Gemini, with scripted replies and failures and a request log.

It does not use Tether's provider clients, so it tests them rather than agreeing with them.

Example::

    from tether.testing.fake_models import FakeFailure, FakeModelServer, FakeReply, FakeToolCall

    with FakeModelServer([
        FakeReply(tool_calls=(FakeToolCall("weather", {"city": "Oslo"}),)),
        FakeFailure.rate_limited(retry_after=3),
        FakeReply("It is sunny.", input_tokens=120, output_tokens=8),
    ], api_key="test-key") as server:
        env = server.env("test-key")         # OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ... point here
        ...
        assert [r.model for r in server.requests] == ["gpt-4o-mini"] * 3
"""

from tether.testing.fake_models.script import FakeFailure, FakeReply, FakeToolCall, LoggedRequest
from tether.testing.fake_models.server import FakeModelServer, Responder, Scripted

__all__ = [
    "FakeFailure",
    "FakeModelServer",
    "FakeReply",
    "FakeToolCall",
    "LoggedRequest",
    "Responder",
    "Scripted",
]
