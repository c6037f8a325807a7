"""Secret references on the in-process pool (I14: secrets are referenced, never journaled): the
tool gets the value, the journal, the views and the logs hold only ``${secret:NAME}``, and an
error quoting the value is scrubbed before it is described."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from secret_tools import REF, SECRET, TOOLS, WORKFLOW, digest

from tether import ExecutionFailedError, Runtime
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.runtime.records import NodeFailed
from tether.runtime.secrets import EnvSecrets, scrub

pytestmark = pytest.mark.anyio


def stored_bytes(folder: Path) -> bytes:
    """Every byte SQLite wrote for the journal (the database and its WAL)."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("runtime.db"))


async def test_the_tool_gets_the_value_and_nothing_stores_or_logs_it_I14(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    async with Runtime(url, tools=TOOLS, secrets={"PROVIDER_KEY": SECRET}) as rt:
        run = await rt.start(rt.register(compile_yaml_text(WORKFLOW, "s.yaml")), {})
        with pytest.raises(ExecutionFailedError) as failed:
            await run.result(timeout=30)
        state = await rt.state(run.id)
        journal = await rt.journal(run.id)
    assert state.data["digest"] == digest(SECRET)  # the tool had the real key
    [failure] = [e.record for e in journal if isinstance(e.record, NodeFailed)]
    assert failure.error == f"PermissionError: provider refused key '{REF}' (key={REF})"
    assert REF in failure.traceback and SECRET not in failure.traceback
    scheduled = [e.record for e in journal if e.type == "node_scheduled"]
    assert [r.input for r in scheduled] == [{"api_key": REF}] * 2  # type: ignore[union-attr]
    assert SECRET not in str(failed.value)
    assert SECRET not in repr([e.record for e in journal]) + repr(state)
    assert SECRET.encode() not in stored_bytes(tmp_path)
    assert SECRET not in caplog.text and "node_failed" in caplog.text


async def test_an_unknown_secret_fails_the_node_naming_it_not_retried(db_url: str) -> None:
    async with Runtime(db_url, tools=TOOLS, secrets=EnvSecrets({})) as rt:
        run = await rt.start(rt.register(compile_yaml_text(WORKFLOW, "s.yaml")), {})
        with pytest.raises(ExecutionFailedError, match="needs secret 'PROVIDER_KEY'"):
            await run.result(timeout=30)
        [failure] = [e.record for e in await rt.journal(run.id) if isinstance(e.record, NodeFailed)]
        assert (failure.error_type, failure.retryable, failure.attempt) == (
            "MissingSecret", False, 1
        )  # fmt: skip
        assert "TETHER_SECRET_PROVIDER_KEY" in failure.error


async def test_a_reference_from_the_runs_input_is_not_resolved(db_url: str) -> None:
    """Whoever starts a run cannot aim a tool at a secret the workflow does not reference."""
    smuggle = """
workflow: {id: smuggle, version: "1", start: call}
nodes:
  call: {type: tool, tool: call_provider, next: end}
"""
    async with Runtime(db_url, tools=TOOLS, secrets={"PROVIDER_KEY": SECRET}) as rt:
        wf = rt.register(compile_yaml_text(smuggle, "m.yaml"))
        run = await rt.start(wf, {"api_key": REF})
        with pytest.raises(ExecutionFailedError, match="only the workflow may reference secrets"):
            await run.result(timeout=30)


def test_a_malformed_reference_is_an_ir_error() -> None:
    bad = WORKFLOW.replace("${secret:PROVIDER_KEY}", "${secret:PROVIDER KEY}", 1)
    with pytest.raises(WorkflowInvalid, match="is not a secret reference"):
        compile_yaml_text(bad, "b.yaml")


def test_scrub_replaces_longer_values_first() -> None:
    used = {"A": "abc", "B": "abcdef"}
    assert scrub("x abcdef y abc", used) == "x ${secret:B} y ${secret:A}"


async def test_an_output_echoing_the_secret_is_scrubbed_before_it_is_journaled_I14(
    tmp_path: Path,
) -> None:
    echo = """
workflow: {id: echo, version: "1", start: call}
nodes:
  call: {type: tool, tool: echoing_provider, input: {api_key: "${secret:PROVIDER_KEY}"},
         output_key: reply, next: end}
"""
    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    async with Runtime(url, tools=TOOLS, secrets={"PROVIDER_KEY": SECRET}) as rt:
        run = await rt.start(rt.register(compile_yaml_text(echo, "echo.yaml")), {})
        reply = (await run.result(timeout=30))["reply"]
    assert reply == {"request": {"headers": [f"Authorization: Bearer {REF}"]}, REF: "seen"}
    assert SECRET.encode() not in stored_bytes(tmp_path)
