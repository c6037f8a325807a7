"""The CLI's HTTP client for a running engine: one function per call, errors as one line.

Example::

    api = EngineApi("http://127.0.0.1:7700", token=None)
    view = api.get(f"/executions/{execution_id}")
"""

from __future__ import annotations

from typing import Any

import httpx


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class EngineApi:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._client.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the engine at {self.url} ({type(exc).__name__}); is "
                "`tether dev` running there? (--engine or TETHER_ENGINE_URL)"
            ) from None
        if resp.status_code >= 400:
            raise CliError(_error_text(resp), status=1)
        return resp.json()


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"the engine answered {resp.status_code}"
    message = body.get("error") or body.get("detail") or str(body)
    issues = body.get("issues") or []
    lines = [f"{resp.status_code}: {message}"] if not issues else [f"{resp.status_code}:"]
    lines += [f"  {i.get('path')}: {i.get('message')}" for i in issues]
    return "\n".join(lines)
