"""The four wire formats as the providers write them, independent of Tether's clients (so the
fake server tests them rather than agreeing with them)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Final

from tether.testing.fake_models.script import FakeFailure, FakeReply, Wire

__all__ = ["Route", "error_body", "key_header", "messages_hash", "reply_body", "route"]

_AZURE: Final = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_GEMINI: Final = re.compile(r"^/v1beta/models/([^/:]+):generateContent$")


class Route:
    """Which wire a path speaks, and the model it names in the path (Azure, Gemini)."""

    def __init__(self, wire: Wire, model: str = "") -> None:
        self.wire = wire
        self.model = model


def route(path: str) -> Route | None:
    """The wire of ``path`` (no query string), or None: not a path any provider serves."""
    if path in ("/v1/chat/completions", "/chat/completions"):
        return Route("openai")
    if path == "/v1/messages":
        return Route("anthropic")
    if m := _AZURE.match(path):
        return Route("azure", m.group(1))
    if m := _GEMINI.match(path):
        return Route("gemini", m.group(1))
    return None


def key_header(wire: Wire) -> str:
    """The header each provider takes its key in (lower case)."""
    return {"openai": "authorization", "azure": "api-key", "anthropic": "x-api-key"}.get(
        wire, "x-goog-api-key"
    )


def messages_hash(wire: Wire, body: dict[str, Any]) -> str:
    """SHA-256 of the conversation part of a request body, canonical JSON."""
    if wire == "gemini":
        keys = ("systemInstruction", "contents", "tools")
    else:
        keys = ("system", "messages", "tools")
    part = {k: body.get(k) for k in keys}
    data = json.dumps(part, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def reply_body(wire: Wire, reply: FakeReply, model: str, body: dict[str, Any], n: int) -> bytes:
    """``reply`` written as ``wire`` answers the request ``body`` (the ``n``-th answer)."""
    calls = [(c.id or f"call_{n}_{i}", c.name, c.arguments) for i, c in enumerate(reply.tool_calls)]
    out_chars = len(reply.text) + sum(len(json.dumps(c.arguments)) for c in reply.tool_calls)
    tokens_in = _tokens(len(json.dumps(body))) if reply.input_tokens is None else reply.input_tokens
    tokens_out = _tokens(out_chars) if reply.output_tokens is None else reply.output_tokens
    model = reply.model or model
    if wire == "anthropic":
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [{"type": "tool_use", "id": i, "name": nm, "input": a} for i, nm, a in calls]
        answer: dict[str, Any] = {
            "id": f"msg_fake_{n}", "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": reply.finish or ("tool_use" if calls else "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }  # fmt: skip
    elif wire == "gemini":
        parts: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
        parts += [{"functionCall": {"name": nm, "args": a}} for _, nm, a in calls]
        answer = {
            "candidates": [{
                "content": {"role": "model", "parts": parts},
                "finishReason": reply.finish or "STOP", "index": 0,
            }],
            "usageMetadata": {
                "promptTokenCount": tokens_in, "candidatesTokenCount": tokens_out,
                "totalTokenCount": tokens_in + tokens_out,
            },
            "modelVersion": model,
            "responseId": f"fake_{n}",
        }  # fmt: skip
    else:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": nm, "arguments": json.dumps(a)}}
                for i, nm, a in calls
            ]
        answer = {
            "id": f"chatcmpl-fake-{n}", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{
                "index": 0, "message": message,
                "finish_reason": reply.finish or ("tool_calls" if calls else "stop"),
            }],
            "usage": {
                "prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }  # fmt: skip
    return json.dumps(answer).encode()


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


#: Each provider's name for an error of a status, as its API reports it.
_KINDS: Final = {
    "anthropic": {400: "invalid_request_error", 401: "authentication_error",
                  403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                  529: "overloaded_error"},
    "gemini": {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"},
    "openai": {400: "invalid_request_error", 401: "invalid_api_key", 404: "model_not_found",
               429: "rate_limit_exceeded"},
}  # fmt: skip


def error_body(wire: Wire, failure: FakeFailure) -> bytes:
    """``failure`` written as ``wire`` reports errors."""
    if failure.body is not None:
        return failure.body.encode()
    status, message = failure.status, failure.message
    if wire == "anthropic":
        kind = _KINDS["anthropic"].get(status, "api_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    if wire == "gemini":
        kind = _KINDS["gemini"].get(status, "INTERNAL")
        error: dict[str, Any] = {"code": status, "message": message, "status": kind}
        if status == 429 and failure.retry_after and failure.retry_after.isdigit():
            error["details"] = [{
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{failure.retry_after}s",
            }]  # fmt: skip
        return json.dumps({"error": error}).encode()
    code = _KINDS["openai"].get(status, "server_error")
    if wire == "azure":
        return json.dumps({"error": {"code": str(status), "message": message}}).encode()
    error = {"message": message, "type": code, "param": None, "code": code}
    return json.dumps({"error": error}).encode()
