"""Tools that take a provider key (the secret-reference tests, in-process and on a real
``tether worker``: ``--modules secret_tools``)."""

from __future__ import annotations

import hashlib

from tether import tool

#: The value the tests give as secret PROVIDER_KEY; nothing but the tools may ever hold it.
SECRET = "sk_live_7f3a9c1e5b2d4f6a8c0e"
#: How WORKFLOW refers to it: what every journal, view and frame may show instead.
REF = "${secret:PROVIDER_KEY}"

#: One workflow: a call that succeeds with the key, then one whose error quotes it.
WORKFLOW = """
workflow: {id: secret-calls, version: "1", start: call, state_schema: {digest: {type: string}}}
nodes:
  call:
    type: tool
    tool: call_provider
    input: {api_key: "${secret:PROVIDER_KEY}"}
    output_key: digest
    next: leak
  leak:
    type: tool
    tool: leaky_provider
    input: {api_key: "${secret:PROVIDER_KEY}"}
    retry: {max_attempts: 1}
    next: end
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@tool
async def call_provider(api_key: str) -> str:
    """Proves it got the real key by its digest (the key itself is not returned)."""
    return digest(api_key)


@tool
def leaky_provider(api_key: str) -> None:
    """A provider client that quotes the key in its error, as some do."""
    raise PermissionError(f"provider refused key {api_key!r} (key={api_key})")


@tool
async def echoing_provider(api_key: str) -> dict[str, object]:
    """A client that returns its request, headers and all (found by review: unscrubbed)."""
    return {"request": {"headers": [f"Authorization: Bearer {api_key}"]}, api_key: "seen"}


TOOLS = [call_provider, leaky_provider, echoing_provider]
