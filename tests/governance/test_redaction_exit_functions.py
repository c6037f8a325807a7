"""The exit functions on their own: a log record (message, arguments, fields, a traceback), a
span (name, attributes, status), and the engine's policy growing as workflows register."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from tether.governance.redaction import EngineRedaction, RedactPolicy
from tether.governance.redaction.log_exit import install_log_redaction
from tether.governance.redaction.trace_exit import RedactingSpanProcessor
from tether.ir import compile_yaml_text
from tether.ir.types import encode_workflow
from tether.persistence import open_store

pytestmark = pytest.mark.anyio
EMAIL = "ann@example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_a_log_line_is_redacted_whole_traceback_included() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s %(fields)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    uninstall = install_log_redaction(EngineRedaction(RedactPolicy(), lambda: b""))
    log = logging.getLogger("tether.test_redaction")
    log.propagate = True
    try:
        try:
            raise ValueError(f"no answer from {EMAIL}")
        except ValueError:
            log.error("mailing %s", EMAIL, exc_info=True, extra={"fields": {"to": [EMAIL], "n": 1}})
    finally:
        uninstall()
        root.removeHandler(handler)
    text = out.getvalue()
    assert EMAIL not in text, text
    assert "mailing [REDACTED:email]" in text and "'n': 1" in text
    assert "ValueError: no answer from [REDACTED:email]" in text


def test_a_span_goes_out_redacted() -> None:
    exported = InMemorySpanExporter()
    processor = RedactingSpanProcessor(
        SimpleSpanProcessor(exported), EngineRedaction(RedactPolicy(), lambda: b"")
    )
    processor.on_end(
        ReadableSpan(
            name=f"execute_tool mail {EMAIL}",
            context=SpanContext(1, 1, False, TraceFlags(TraceFlags.SAMPLED)),
            attributes={"tether.user_id": EMAIL, "tether.attempt": 2},
            status=Status(StatusCode.ERROR, f"bounced: {EMAIL}"),
        )
    )
    [span] = exported.get_finished_spans()
    assert span.name == "execute_tool mail [REDACTED:email]"
    assert dict(span.attributes or {}) == {
        "tether.user_id": "[REDACTED:email]",
        "tether.attempt": 2,
    }
    assert span.status.description == "bounced: [REDACTED:email]"


async def test_the_engine_policy_is_its_own_and_every_registered_workflows(
    tmp_path: Path,
) -> None:
    flow = "workflow: {id: w, version: '1'}\ngovernance: {redact: {detectors: [card]}}\n"
    wf = compile_yaml_text(flow + "nodes:\n  a: {type: end}\n")
    redaction = EngineRedaction(None, lambda: b"")
    assert redaction.current is None  # nothing to redact: the exits pass values through
    store = await open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        await store.put_workflow(wf.workflow_id, wf.version, encode_workflow(wf), 1)
        await redaction.load(store)  # what the engine does as it starts
    finally:
        await store.close()
    assert redaction.current is not None
    assert redaction.current.text(f"{EMAIL} 4111111111111111") == f"{EMAIL} [REDACTED:card]"
    engine_wide = EngineRedaction(RedactPolicy(detectors=["email"]), lambda: b"")
    engine_wide.add(wf)
    assert engine_wide.current is not None
    assert engine_wide.current.text(f"{EMAIL} 4111111111111111") == (
        "[REDACTED:email] [REDACTED:card]"
    )
