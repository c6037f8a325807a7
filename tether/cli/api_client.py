"""The CLI's HTTP client for a running engine: one function per call, errors as one line.

Example::

    api = EngineApi("http://127.0.0.1:7700", token=None)
    view = api.get(f"/executions/{execution_id}")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import httpx

#: ``--engine``'s help: the URL is found when a command runs (``engine_url``), not when the
#: parser is built, so building it (every ``tether`` command, ``tether dev`` too) stays light.
ENGINE_HELP: Final = (
    "engine URL (default: TETHER_ENGINE_URL, else the engine `tether dev` serves with this "
    "environment: TETHER_PORT on TETHER_BIND)"
)


def engine_url(env: Mapping[str, str]) -> str:
    """The engine the commands talk to: ``TETHER_ENGINE_URL``, else the one ``tether dev``
    starts with the same environment (``TETHER_PORT``, and ``TETHER_BIND`` unless it is a
    wildcard address), so one configuration serves both sides.

    Example::

        engine_url({"TETHER_PORT": "17700"})      # 'http://127.0.0.1:17700'
    """
    if env.get("TETHER_ENGINE_URL"):
        return env["TETHER_ENGINE_URL"]
    from tether.deployment import local_engine_url  # httpx, the YAML compiler: on use

    return local_engine_url(env)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class EngineApi:
    """The engine at ``url``; ``None`` is ``engine_url`` of this process's environment."""

    def __init__(self, url: str | None, token: str | None, timeout: float = 30.0) -> None:
        import httpx  # here, not at import: every command's parser imports this module

        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = (url or engine_url(os.environ)).rstrip("/")
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

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
