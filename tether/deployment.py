"""``deploy``: register a workflow (YAML, IR or ``@workflow``) on a running engine, and
optionally put it on a cron schedule there. It never starts a run.

Where it goes (``runtime=``):

- ``None`` or ``"local"``: the ``tether dev`` of this machine, ``http://127.0.0.1:7700``
  (``TETHER_PORT`` and ``TETHER_BIND`` as the CLI reads them); token ``TETHER_TOKEN``.
- ``"self-host"``: your own engine at ``TETHER_RUNTIME_URL``; token ``TETHER_RUNTIME_TOKEN``.
- ``"cloud"``: a hosted engine at ``TETHER_CLOUD_URL`` (``https://`` only: the token must
  not cross the network in clear); token ``TETHER_CLOUD_TOKEN``.
- an ``http(s)://`` URL: that engine; token ``TETHER_TOKEN``.

``token=`` overrides the variable. A named remote leg whose URL variable is not set is a
:class:`DeployError` naming the variable: it never falls back to the local engine.

A code-first workflow runs only on an engine that has its body: start that engine with
``tether dev --modules <the module that defines it>`` (the engine refuses it otherwise, 422).

Example::

    from tether import deploy

    done = deploy(Path("flows/report.yaml"), runtime="self-host", schedule="0 9 * * *")
    print(done.workflow_id, done.version, done.url, done.schedule_id)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from tether.errors import InvalidInput, TetherError
from tether.ir import compile_yaml_file
from tether.ir.types import Workflow
from tether.runtime.code_first.decorators import CodeWorkflow
from tether.runtime.schedules import parse_cron

DEFAULT_PORT: Final = "7700"
#: The legs ``runtime=`` names, and the variables each reads (URL, token).
NAMED_LEGS: Final = {
    "self-host": ("TETHER_RUNTIME_URL", "TETHER_RUNTIME_TOKEN"),
    "cloud": ("TETHER_CLOUD_URL", "TETHER_CLOUD_TOKEN"),
}
#: How long one call to the engine may take (a large IR is compiled there).
TIMEOUT_SECS: Final = 30.0

DeployableWorkflow = Workflow | CodeWorkflow | Mapping[str, Any] | Path | str


class DeployError(TetherError):
    """The deployment did not happen: no engine configured or reachable, or the engine
    refused it (``status`` is its HTTP status then, and the message what it said)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Deployment:
    """What ``deploy`` did: the version registered, where, and the schedule it installed."""

    workflow_id: str
    version: str
    #: The content digest the engine holds (``sha256:...``).
    digest: str
    #: ``local``, ``self-host``, ``cloud`` or ``url``.
    runtime: str
    url: str
    scheduled: bool
    schedule_id: str | None = None


@dataclass(frozen=True)
class Target:
    """An engine to deploy to: its leg, URL and token, and the variable that names the token
    (for the hint on a 401)."""

    leg: str
    url: str
    token: str | None
    token_variable: str


def local_engine_url(env: Mapping[str, str]) -> str:
    """The engine ``tether dev`` starts with this environment: ``TETHER_PORT`` on
    ``TETHER_BIND`` (loopback for a wildcard address).

    Example::

        local_engine_url({"TETHER_PORT": "17700"})      # 'http://127.0.0.1:17700'
    """
    port = env.get("TETHER_PORT", "").strip() or DEFAULT_PORT
    host = env.get("TETHER_BIND", "").strip() or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    return f"http://{host}:{port}"


def resolve_target(runtime: str | None, token: str | None, env: Mapping[str, str]) -> Target:
    """Where ``runtime=`` points. Raises DeployError for a leg with no URL configured.

    Example::

        resolve_target("self-host", None, {"TETHER_RUNTIME_URL": "https://tether.internal"})
    """
    if runtime is None or runtime == "local":
        return Target("local", local_engine_url(env), token or _env(env, "TETHER_TOKEN"),
                      "TETHER_TOKEN")  # fmt: skip
    if runtime in NAMED_LEGS:
        url_variable, token_variable = NAMED_LEGS[runtime]
        url = _env(env, url_variable)
        if url is None:
            raise DeployError(
                f"runtime={runtime!r}: set {url_variable} to the engine's URL (and "
                f"{token_variable} to its token); nothing was deployed"
            )
        if runtime == "cloud" and not url.startswith("https://"):
            raise DeployError(f"runtime='cloud': {url_variable} must be an https:// URL, "
                              f"got {url!r}; nothing was deployed")  # fmt: skip
        return Target(runtime, url.rstrip("/"), token or _env(env, token_variable), token_variable)
    if runtime.startswith(("http://", "https://")):
        return Target("url", runtime.rstrip("/"), token or _env(env, "TETHER_TOKEN"),
                      "TETHER_TOKEN")  # fmt: skip
    raise DeployError(
        f"runtime must be 'local', 'self-host', 'cloud' or an http(s):// URL, got {runtime!r}"
    )


def _env(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def workflow_ir(workflow: DeployableWorkflow) -> dict[str, Any]:
    """The IR dict ``POST /workflows`` takes, from a workflow in any form ``deploy`` does."""
    if isinstance(workflow, CodeWorkflow):
        workflow = workflow.ir()
    elif isinstance(workflow, Path | str):
        workflow = compile_yaml_file(Path(workflow))  # errors name the file and line
    if isinstance(workflow, Workflow):
        ir: dict[str, Any] = msgspec.to_builtins(workflow)
        return ir
    return dict(workflow)


def deploy(
    workflow: DeployableWorkflow,
    runtime: str | None = None,
    *,
    schedule: str | None = None,
    token: str | None = None,
    input: Mapping[str, Any] | None = None,
    schedule_id: str | None = None,
    timezone: str = "UTC",
    env: Mapping[str, str] | None = None,
) -> Deployment:
    """Register ``workflow`` on the engine ``runtime`` names (see the module docstring), and
    with ``schedule`` (a cron expression in ``timezone``) start it there at every fire with
    ``input``, under ``schedule_id`` (default: the workflow id, so a redeploy moves the
    schedule to the new version). Never starts a run. Deploying the same content again
    changes nothing; other content under a deployed ``id@version`` is refused by the engine
    (DeployError with its message). Blocking: from async code, run it in a thread.

    Example::

        deploy(order, runtime="https://tether.example.com", token=token)   # a @workflow
    """
    env = os.environ if env is None else env
    target = resolve_target(runtime, token, env)
    ir = workflow_ir(workflow)
    if schedule is not None:
        try:
            parse_cron(schedule, timezone)  # refused here, before anything is registered
        except InvalidInput as exc:
            raise DeployError(f"schedule: {exc}; nothing was deployed") from None
    with _EngineCalls(target) as engine:
        registered = engine.post("/workflows", {"ir": ir})
        wid, version = registered["workflow_id"], registered["version"]
        if schedule is not None:
            body = {"schedule_id": schedule_id or wid, "cron": schedule, "workflow_id": wid,
                    "workflow_version": version, "input": dict(input or {}),
                    "timezone": timezone}  # fmt: skip
            try:
                schedule_id = engine.post("/schedules", body)["schedule_id"]
            except DeployError as exc:  # say what did happen: the version is there now
                raise DeployError(f"{wid}@{version} was registered, but not scheduled: {exc}",
                                  exc.status) from None  # fmt: skip
    return Deployment(
        workflow_id=wid, version=version, digest=registered["digest"], runtime=target.leg,
        url=target.url, scheduled=schedule is not None,
        schedule_id=schedule_id if schedule is not None else None,
    )  # fmt: skip


class _EngineCalls:
    """The engine's API for one deployment: every failure a DeployError saying where."""

    def __init__(self, target: Target) -> None:
        self._target = target
        headers = {"authorization": f"Bearer {target.token}"} if target.token else {}
        self._client = httpx.Client(base_url=target.url, headers=headers, timeout=TIMEOUT_SECS)

    def __enter__(self) -> _EngineCalls:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        where = f"the {self._target.leg} engine at {self._target.url}"
        try:
            resp = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise DeployError(f"cannot reach {where} ({type(exc).__name__}: {exc})") from None
        if resp.is_success:
            answer: dict[str, Any] = resp.json()
            return answer
        raise DeployError(f"{where} refused POST {path}: {_refusal(resp, self._target)}",
                          status=resp.status_code)  # fmt: skip


def _refusal(resp: httpx.Response, target: Target) -> str:
    """What the engine said (its ``error``, and each issue with its IR path)."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    said = body.get("error") if isinstance(body, dict) else None
    text = f"{resp.status_code}: {said or resp.reason_phrase}"
    issues = body.get("issues") if isinstance(body, dict) else None
    for issue in issues if isinstance(issues, list) else []:
        if isinstance(issue, dict):
            text += f"; {issue.get('path')}: {issue.get('message')}"
    if resp.status_code == 401:
        hint = "wrong token" if target.token else "no token"
        text += f" ({hint}: set {target.token_variable} or pass token=)"
    return text
