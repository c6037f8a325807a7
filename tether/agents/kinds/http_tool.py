"""The http node's call: its arguments bound at hand-out (URL and body rendered from state;
headers as written, their ``${NAME}`` filled only where the call runs, so never journaled) and
the built-in tool ``tether.http`` that makes it.

Example::

    args = http_args(node, data)     # {"method": "GET", "url": "https://.../items/7", ...}
    await HttpCaller().call(**args)  # {"output": {"status": 200, "body": {...}}, "facts": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from tether.agents.http_node import call_http
from tether.ir.templates import parse_template, render_value
from tether.ir.types import HttpKind, Node
from tether.runtime.secrets import SecretSource
from tether.runtime.tools import Tool

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

HTTP_TOOL: Final = "tether.http"


def http_args(node: Node, data: Mapping[str, Any]) -> dict[str, Any]:
    kind = node.kind
    assert isinstance(kind, HttpKind)
    args: dict[str, Any] = {
        "method": kind.method,
        "url": parse_template(kind.url).render(data, data),
        "response": kind.response,
    }
    if kind.headers:
        args["headers"] = dict(kind.headers)
    if kind.body is not None:
        args["body"] = render_value(kind.body, data, data)
    if kind.expect_status:
        args["expect_status"] = list(kind.expect_status)
    if node.node_timeout_secs is not None:
        args["timeout_secs"] = node.node_timeout_secs
    return args


class HttpCaller:
    """Makes http nodes' calls over one shared connection pool."""

    def __init__(self, secrets: SecretSource | None = None) -> None:
        self._secrets = secrets
        self._http: httpx.AsyncClient | None = None

    def tool(self) -> Tool:
        return Tool(
            name=HTTP_TOOL, fn=self.call, params=(), required=frozenset(), is_async=True,
            qualname="tether.agents.kinds.http_tool.HttpCaller.call", accepts_kwargs=True,
            description="Make one HTTP request", inline=False,
        )  # fmt: skip

    async def call(self, **args: Any) -> dict[str, Any]:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(follow_redirects=False)
        reply = await call_http(args, secrets=self._secrets, client=self._http)
        return {"output": reply, "facts": {"http_status": reply["status"]}}

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
