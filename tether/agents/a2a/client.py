"""A small A2A client (JSON-RPC, protocol 0.3): read a remote agent's card, send it a
message, follow the task it answers with until it ends.

What a failure comes to, for the work item that makes the call: no answer, a timeout, a 5xx
or a 429 is :class:`A2aUnreachable` (retried); a JSON-RPC error or an answer that is not
A2A is :class:`A2aRefused` (the node fails at once, saying what the remote said).

Example::

    client = A2aClient(token=None)
    card = await client.card("http://127.0.0.1:7700")
    task = await client.rpc(card["url"], "message/send", {"message": {...}})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.errors import NonRetryableError

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

#: Task states after which nothing more happens.
TERMINAL_STATES = frozenset({"completed", "failed", "canceled", "rejected"})
#: States in which the remote waits for someone (Tether does not answer them).
WAITING_STATES = frozenset({"input-required", "auth-required"})


class A2aUnreachable(ConnectionError):
    """The remote agent did not answer (or answered 5xx/429): the call is retried."""


class A2aRefused(NonRetryableError):
    """The remote agent refused the call, failed the task, or does not speak A2A."""


class A2aClient:
    """One client for every remote agent; ``token`` goes as ``Authorization: Bearer``."""

    def __init__(self, token: str | None = None, http: httpx.AsyncClient | None = None) -> None:
        self._token = token
        self._http = http

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(follow_redirects=False)
        return self._http

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def card(self, where: str) -> dict[str, Any]:
        """The card at ``where``: a card's URL (ending in ``.json`` or ``/card``), or an
        agent's base URL (``/.well-known/agent.json``, then ``agent-card.json``)."""
        if where.endswith((".json", "/card")):
            candidates = [where]
        else:
            base = where.rstrip("/")
            candidates = [f"{base}/.well-known/agent.json", f"{base}/.well-known/agent-card.json"]
        for url in candidates:
            reply = await self._get(url)
            if reply.status_code == 404 and url != candidates[-1]:
                continue
            _raise_for(reply, url)
            card = _json(reply, url)
            if not isinstance(card, dict) or not isinstance(card.get("url"), str):
                raise A2aRefused(f"{url} is not an A2A Agent Card (no 'url')")
            return card
        raise A2aRefused(f"no Agent Card at {where}")  # pragma: no cover (loop returns)

    async def rpc(
        self, endpoint: str, method: str, params: dict[str, Any], *, timeout: float = 30.0
    ) -> Any:
        """Call ``method`` and return its ``result``."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        import httpx

        try:
            reply = await self._client().post(
                endpoint, json=body, headers=self._headers(), timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise A2aUnreachable(f"A2A {endpoint}: {type(exc).__name__}: {exc}") from None
        _raise_for(reply, endpoint)
        answer = _json(reply, endpoint)
        if not isinstance(answer, dict):
            raise A2aRefused(f"A2A {endpoint}: the answer is not a JSON-RPC object")
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise A2aRefused(
                f"A2A {endpoint} {method}: error {error.get('code')}: {error.get('message')}"
            )
        if "result" not in answer:
            raise A2aRefused(f"A2A {endpoint} {method}: the answer has no result")
        return answer["result"]

    async def _get(self, url: str) -> httpx.Response:
        import httpx

        try:
            return await self._client().get(url, headers=self._headers(), timeout=15.0)
        except httpx.HTTPError as exc:
            raise A2aUnreachable(f"A2A card {url}: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _raise_for(reply: httpx.Response, url: str) -> None:
    if reply.status_code >= 500 or reply.status_code == 429:
        raise A2aUnreachable(f"A2A {url} answered {reply.status_code}")
    if reply.status_code >= 400:
        raise A2aRefused(f"A2A {url} answered {reply.status_code}: {reply.text[:300]}")


def _json(reply: httpx.Response, url: str) -> Any:
    try:
        return reply.json()
    except ValueError:
        raise A2aRefused(f"A2A {url} answered something that is not JSON") from None
