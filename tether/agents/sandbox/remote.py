"""``sandbox: remote``: the code is posted to a sandbox service at ``TETHER_SANDBOX_URL``.

The service speaks a small JSON protocol:

- ``GET {url}/health``: any answer below 500 means it is there (asked when the engine starts;
  no answer and the engine refuses to start rather than run code locally instead);
- ``POST {url}/run`` with ``{"code", "input", "limits"}`` (limits as
  :class:`~tether.agents.sandbox.limits.SandboxLimits`): ``200`` with ``{"exit_code",
  "stdout", "stderr", "stopped", "reason", "cpu_secs", "max_rss_kb", "wall_ms"}``.

No answer, a timeout or a 5xx is retried as any transient failure (the call is a work item);
a 4xx fails the node with what the service said. Never falls back to local.

Example::

    sandbox = RemoteSandbox("http://sandbox.internal:8800")
    await sandbox.check()                            # SandboxUnreachable if it is not there
    run = await sandbox.run("print(1)", None, SandboxLimits())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.agents.sandbox.limits import SandboxError, SandboxLimits, SandboxRun, SandboxUnreachable

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none


class RemoteSandbox:
    """A client of one sandbox service."""

    def __init__(self, url: str, client: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = client

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def check(self) -> None:
        """Raise :class:`SandboxUnreachable` unless the service answers its health check."""
        import httpx

        try:
            reply = await self._http().get(f"{self.url}/health", timeout=5.0)
        except httpx.HTTPError as exc:
            raise SandboxUnreachable(
                f"TETHER_SANDBOX_URL={self.url} is unreachable ({type(exc).__name__}: {exc}); "
                "refusing to start rather than run code outside it"
            ) from None
        if reply.status_code >= 500:
            raise SandboxUnreachable(
                f"TETHER_SANDBOX_URL={self.url} answered its health check {reply.status_code}; "
                "refusing to start rather than run code outside it"
            )

    async def run(self, code: str, input: Any, limits: SandboxLimits) -> SandboxRun:
        body = {"code": code, "input": input, "limits": limits.as_dict()}
        import httpx

        try:
            reply = await self._http().post(
                f"{self.url}/run", json=body, timeout=limits.wall_secs + 30.0
            )
        except httpx.HTTPError as exc:
            raise SandboxUnreachable(
                f"sandbox service {self.url}: {type(exc).__name__}: {exc}"
            ) from None
        if reply.status_code >= 500:
            raise SandboxUnreachable(f"sandbox service {self.url} answered {reply.status_code}")
        if reply.status_code != 200:
            raise SandboxError(
                f"sandbox service {self.url} refused the run ({reply.status_code}): "
                f"{reply.text[:500]}"
            )
        try:
            got = reply.json()
            return SandboxRun(
                exit_code=got.get("exit_code"), stdout=str(got.get("stdout", "")),
                stderr=str(got.get("stderr", "")), stopped=got.get("stopped"),
                reason=str(got.get("reason", "")), cpu_secs=float(got.get("cpu_secs", 0.0)),
                max_rss_kb=int(got.get("max_rss_kb", 0)), wall_ms=int(got.get("wall_ms", 0)),
                files=list(got.get("files", [])), layers=[f"remote: {self.url}"],
            )  # fmt: skip
        except (ValueError, TypeError, AttributeError) as exc:
            raise SandboxError(
                f"sandbox service {self.url} answered malformed JSON: {exc}"
            ) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
