"""The built-in tools that run code in a sandbox: ``tether.run_code`` (a ``run_code`` node's
calls, bound at hand-out so the code is in the journal) and ``run_code`` (offered to an agent
that lists it in its ``tools``). Each call is a work item like any tool's, so each run is a
journaled step: the code in ``node_scheduled``, its output in ``node_completed`` with the
facts ``code_sha256``, ``exit_code``, ``sandbox_stopped``, ``cpu_secs``, ``max_rss_kb``,
``wall_ms`` and ``sandbox_layers``.

Example::

    caller = RunCodeCaller(env={"TETHER_SANDBOX_URL": "http://sandbox:8800"})
    await caller.start()                      # refuses if that service does not answer
    out = await caller.call(code="print(2 + 2)")
    out["output"]["stdout"]                   # '4\\n'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tether.agents.sandbox.limits import SandboxError, SandboxLimits
from tether.agents.sandbox.local import LocalSandbox
from tether.agents.sandbox.remote import RemoteSandbox
from tether.agents.state_inputs import bind_input
from tether.ir.errors import ValidationIssue
from tether.ir.types import Node, RunCodeKind, Workflow
from tether.runtime.tools import Tool

NODE_TOOL: Final = "tether.run_code"
AGENT_TOOL: Final = "run_code"
URL_VARIABLE: Final = "TETHER_SANDBOX_URL"


def run_code_args(node: Node, data: Mapping[str, Any]) -> dict[str, Any]:
    """A ``run_code`` node's call from state: the code (literal, or ``$path``), ``INPUT``,
    the sandbox and its limits."""
    kind = node.kind
    assert isinstance(kind, RunCodeKind)
    code = kind.code
    if code.startswith("$") and not code.startswith("${"):
        code = bind_input(code, data)
        if not isinstance(code, str):
            raise ValueError(f"run_code: {kind.code} holds {type(code).__name__}, not code")
    mapping = node.input or kind.input_mapping
    args: dict[str, Any] = {"code": code, "sandbox": kind.sandbox}
    if mapping:
        args["input"] = {name: bind_input(source, data) for name, source in mapping.items()}
    if kind.limits:
        args["limits"] = dict(kind.limits)
    return args


def check_run_code(wf: Workflow, env: Mapping[str, str]) -> list[ValidationIssue]:
    """Limits that do not parse, and ``sandbox: remote`` with no service configured."""
    issues = []
    for node in wf.nodes.values():
        kind = node.kind
        if not isinstance(kind, RunCodeKind):
            continue
        try:
            SandboxLimits.parse(dict(kind.limits))
        except SandboxError as exc:
            issues.append(
                ValidationIssue(f"nodes.{node.id}.kind.limits", f"node {node.id!r}: {exc}")
            )
        if kind.sandbox == "remote" and not env.get(URL_VARIABLE):
            issues.append(
                ValidationIssue(
                    f"nodes.{node.id}.kind.sandbox",
                    f"node {node.id!r}: sandbox: remote needs {URL_VARIABLE} (the sandbox "
                    "service's URL); it never runs the code locally instead",
                )
            )
    return issues


class RunCodeCaller:
    """Runs code locally or on the configured service. ``env``: where ``TETHER_SANDBOX_URL``
    is read (the runtime's environment); the agent's ``run_code`` uses the service when it is
    configured, else the local sandbox, with ``limits``."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        limits: SandboxLimits | None = None,
        local: LocalSandbox | None = None,
    ) -> None:
        self._env = env
        self._limits = limits or SandboxLimits()
        self._local = local or LocalSandbox()
        self._remote: RemoteSandbox | None = None

    def _service(self) -> RemoteSandbox | None:
        url = self._env.get(URL_VARIABLE)
        if url and (self._remote is None or self._remote.url != url.rstrip("/")):
            self._remote = RemoteSandbox(url)
        return self._remote if url else None

    async def start(self) -> None:
        """Refuse to start (``SandboxUnreachable``) when a service is configured and does
        not answer."""
        remote = self._service()
        if remote is not None:
            await remote.check()

    def tools(self) -> tuple[Tool, Tool]:
        node = Tool(
            name=NODE_TOOL, fn=self.call, params=(), required=frozenset(), is_async=True,
            qualname="tether.agents.sandbox.caller.RunCodeCaller.call", accepts_kwargs=True,
            description="Run code in a sandbox", inline=False,
        )  # fmt: skip
        agent = Tool(
            name=AGENT_TOOL, fn=self.run_code, params=("code",), required=frozenset({"code"}),
            is_async=True, qualname="tether.agents.sandbox.caller.RunCodeCaller.run_code",
            description=(
                "Run Python 3 code in an isolated sandbox (no network, no files outside its "
                "scratch directory, limited CPU, memory and time) and get its exit code, "
                "stdout and stderr. Print what you want to see."
            ),
            inline=False,
        )  # fmt: skip
        return node, agent

    async def run_code(self, code: str) -> dict[str, Any]:
        """The agent's tool: the configured sandbox, the default limits."""
        where = "remote" if self._service() is not None else "local"
        return await self.call(code=code, sandbox=where)

    async def call(
        self,
        code: str,
        sandbox: str = "local",
        input: Any = None,
        limits: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not isinstance(code, str):
            raise SandboxError(f"run_code: code must be a string, got {type(code).__name__}")
        parsed = SandboxLimits.parse(dict(limits) if limits else None, self._limits)
        if sandbox == "remote":
            remote = self._service()
            if remote is None:
                raise SandboxError(f"run_code: sandbox: remote needs {URL_VARIABLE}")
            run = await remote.run(code, input, parsed)
        elif sandbox == "local":
            run = await self._local.run(code, input, parsed)
        else:
            raise SandboxError(f"run_code: sandbox must be 'local' or 'remote', got {sandbox!r}")
        return {"output": run.output(), "facts": run.facts(code, sandbox)}

    async def aclose(self) -> None:
        if self._remote is not None:
            await self._remote.aclose()
