"""``deploy`` against a real ``tether dev`` on loopback: a YAML workflow and a ``@workflow``
to the local engine, to a self-hosted one behind a token (with a schedule, seen by the API
and ``tether schedules``), to a plain URL; it never starts a run, redeploying the same content
changes nothing, and the engine's refusals come back as DeployError with its message."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_cli_commands import tether
from test_http_code_first import code_first_example
from test_server_http import EXAMPLES, edited_counter, running_engine

from tether import DeployError, Deployment, deploy

COUNTER = EXAMPLES / "counter.yaml"
TOKEN = "deploy-test-token-0123456789"
#: 29 February: no fire of it can start a run while a test looks.
LEAP_DAY = "0 0 29 2 *"
order = code_first_example().order


def _read(url: str, path: str, token: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    resp = httpx.get(url + path, headers=headers)
    resp.raise_for_status()
    return resp.json()


def test_deploy_to_the_local_engine_registers_both_kinds_and_starts_nothing(
    tmp_path: Path,
) -> None:
    with running_engine(tmp_path, modules="tools,code_first") as e:
        local = {"TETHER_PORT": str(e.port)}
        graph = deploy(COUNTER, env=local)
        code = deploy(order, runtime="local", env=local)
        [counter_row, order_row] = _read(e.url, "/workflows")["workflows"]
        assert graph == Deployment("counter", "1", counter_row["digest"], "local", e.url, False)
        assert code == Deployment("order", "1", order_row["digest"], "local", e.url, False)
        assert deploy(COUNTER, env=local) == graph  # the same content again: a no-op
        assert _read(e.url, "/workflows")["workflows"] == [counter_row, order_row]
        assert _read(e.url, "/executions")["executions"] == []  # deploy never starts a run
        assert _read(e.url, "/schedules")["schedules"] == []


def test_other_content_under_a_deployed_version_is_refused_with_the_engines_message(
    tmp_path: Path,
) -> None:
    edited = tmp_path / "counter.yaml"
    edited.write_text(edited_counter())
    with running_engine(tmp_path) as e:
        first = deploy(COUNTER, runtime=e.url, env={})
        assert (first.runtime, first.url) == ("url", e.url)
        with pytest.raises(DeployError) as err:
            deploy(edited, runtime=e.url, env={})
        assert err.value.status == 409
        assert "refused POST /workflows: 409: workflow counter version 1 is already " \
            "registered with content" in str(err.value)  # fmt: skip
        assert [w["digest"] for w in _read(e.url, "/workflows")["workflows"]] == [first.digest]


def test_a_named_leg_left_unconfigured_never_reaches_the_local_engine(tmp_path: Path) -> None:
    with running_engine(tmp_path) as e:
        local = {"TETHER_PORT": str(e.port)}
        for leg, variable in (("self-host", "TETHER_RUNTIME_URL"), ("cloud", "TETHER_CLOUD_URL")):
            with pytest.raises(DeployError, match=f"set {variable}"):
                deploy(COUNTER, runtime=leg, env=local)
        assert _read(e.url, "/workflows")["workflows"] == []


def test_self_host_with_a_token_installs_a_schedule_and_refuses_what_it_lacks(
    tmp_path: Path,
) -> None:
    with running_engine(tmp_path, {"TETHER_TOKEN": TOKEN}, modules="tools") as e:
        remote = {"TETHER_RUNTIME_URL": e.url, "TETHER_RUNTIME_TOKEN": TOKEN}
        done = deploy(COUNTER, runtime="self-host", schedule=LEAP_DAY, input={"n": 1},
                      timezone="Europe/Paris", env=remote)  # fmt: skip
        assert (done.runtime, done.url, done.scheduled, done.schedule_id) == (
            "self-host", e.url, True, "counter",
        )  # fmt: skip
        [row] = _read(e.url, "/schedules", TOKEN)["schedules"]
        assert (row["workflow_id"], row["workflow_version"], row["cron"], row["input"]) == (
            "counter", "1", LEAP_DAY, {"n": 1},
        )  # fmt: skip
        listed = tether(e.url, "schedules", "--json", env={"TETHER_TOKEN": TOKEN})
        assert [r["schedule_id"] for r in json.loads(listed.stdout)] == ["counter"]
        assert _read(e.url, "/executions", TOKEN)["executions"] == []
        with pytest.raises(DeployError, match=r"401.*no token: set TETHER_RUNTIME_TOKEN"):
            deploy(COUNTER, runtime="self-host", env={"TETHER_RUNTIME_URL": e.url})
        with pytest.raises(DeployError) as lacks:
            deploy(order, runtime="self-host", env=remote)  # this engine has no code_first
        assert lacks.value.status == 422
        assert "start the engine with `tether dev --modules code_first`" in str(lacks.value)
        with pytest.raises(DeployError, match=r"schedule: cron: 'daily'.*nothing was deployed"):
            deploy(COUNTER, runtime="self-host", schedule="daily", env=remote)
        assert len(_read(e.url, "/workflows", TOKEN)["workflows"]) == 1


def test_an_engine_that_cannot_be_reached_is_a_deploy_error() -> None:
    with pytest.raises(DeployError, match=r"cannot reach the url engine at http://127\.0\.0\.1:9"):
        deploy(COUNTER, runtime="http://127.0.0.1:9", env=dict(os.environ))


def test_tether_deploy_registers_a_file_and_a_workflow_object_from_the_cli(
    tmp_path: Path,
) -> None:
    with running_engine(tmp_path, {"TETHER_TOKEN": TOKEN}, modules="tools,code_first") as e:
        env = {"TETHER_TOKEN": TOKEN}
        graph = tether(e.url, "deploy", str(COUNTER), "--runtime", e.url, env=env)
        assert graph.returncode == 0, graph.stderr
        assert graph.stdout.startswith("deployed counter@1 (sha256:") and e.url in graph.stdout
        code = tether(e.url, "deploy", "code_first:order", "--runtime", e.url,
                      "--schedule", LEAP_DAY, env=env, cwd=EXAMPLES)  # fmt: skip
        assert code.returncode == 0, code.stderr
        assert (
            "deployed order@1" in code.stdout and f"scheduled as order: {LEAP_DAY}" in code.stdout
        )
        assert _read(e.url, "/executions", TOKEN)["executions"] == []  # nothing was started
        unset = tether(e.url, "deploy", str(COUNTER), "--runtime", "cloud", env=env)
        assert unset.returncode == 1 and "TETHER_CLOUD_URL" in unset.stderr
        bad = tether(e.url, "deploy", "code_first:nothing_here", env=env, cwd=EXAMPLES)
        assert bad.returncode == 2 and "is not a @workflow" in bad.stderr
        assert "Traceback" not in unset.stderr + bad.stderr
