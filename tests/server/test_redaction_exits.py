"""PII redaction at every exit of a real ``tether dev``: random state payloads seeded with PII of
every kind (emails, phone numbers, Luhn-valid cards, mod-97-valid IBANs, SSNs and NINOs, API
keys, bearer tokens, a custom pattern) run through a workflow whose IR carries
``governance.redact``; a tool hands the payload back into state, another fails once with it in
its error, a person approves with it in the comment and as the user id. Then no value appears
in any exit: the API views (execution, list, events, states and time travel, approvals, the
dashboard's views), the CLI (which reads them), the engine's log lines, the spans it exported
over OTLP, and the JSON and PDF evidence bundles."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_http import DEADLINE, Engine, ir_of, running_engine

from tether.cli import main
from tether.governance import init_keys
from tether.governance.redaction.detectors import iban_ok, luhn_ok

HERE = Path(__file__).resolve().parent

FLOW = """
workflow: {id: pii, version: "1"}
governance:
  redact: {mode: mask, patterns: {employee: "EMP-[0-9]{6}"}}
nodes:
  echo: {type: tool, tool: echo, input: {payload: $payload}, output_key: echoed, next: flaky}
  flaky:
    type: tool
    tool: flaky
    input: {payload: $payload, key: $key}
    output_key: reached
    retry: {max_attempts: 2, backoff_initial_secs: 0.01}
    next: review
  review: {type: human_approval, description: "call them?", next: end}
"""

_lower, _digit = "abcdefghijklmnopqrstuvwxyz", "0123456789"
_upper = _lower.upper()
_alnum = _lower + _upper + _digit


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(_digit, min_size=n, max_size=n)


@st.composite
def _card(draw: st.DrawFn) -> str:
    body = "4" + draw(_digits(14))
    number = body + next(d for d in _digit if luhn_ok(body + d))
    return " ".join(number[i : i + 4] for i in range(0, 16, 4)) if draw(st.booleans()) else number


@st.composite
def _iban(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(["NL", "DE", "GB", "FR", "ES"]))
    bban = draw(st.text(_digit + _upper, min_size=14, max_size=20))
    return next(c for k in range(2, 99) if iban_ok(c := f"{country}{k:02d}{bban}"))


_email = st.builds(
    "{}.{}@{}.{}".format,
    st.text(_lower + _digit, min_size=2, max_size=10),
    st.text(_lower, min_size=2, max_size=8),
    st.text(_lower, min_size=3, max_size=10),
    st.sampled_from(["com", "org", "nl", "co.uk"]),
)
_phone = st.builds(
    "+{} {} {} {}".format,
    st.integers(1, 99),
    _digits(3),
    _digits(3),
    _digits(4),
)
_ssn = st.builds(
    "{:03d}-{:02d}-{:04d}".format,
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
)
_nino = st.builds(
    "{}{} {} {} {} {}".format,
    st.sampled_from("ACEHJKLMPRSTWXYZ"),
    st.sampled_from("ABCEHJKLMPRSTWXY"),
    _digits(2),
    _digits(2),
    _digits(2),
    st.sampled_from("ABCD"),
).filter(lambda n: n[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_api_key = st.one_of(
    st.builds("sk-proj-{}".format, st.text(_alnum, min_size=20, max_size=32)),
    st.builds("ghp_{}".format, st.text(_alnum, min_size=36, max_size=36)),
    st.builds("AKIA{}".format, st.text(_digit + _upper, min_size=16, max_size=16)),
)
_bearer = st.builds("Bearer {}".format, st.text(_alnum + "._-", min_size=20, max_size=40))
_employee = st.builds("EMP-{}".format, _digits(6))
KINDS = {
    "email": _email, "phone": _phone, "card": _card(), "iban": _iban(), "ssn": _ssn,
    "nino": _nino, "api_key": _api_key, "bearer": _bearer, "employee": _employee,
}  # fmt: skip
_word = st.text(_lower, min_size=1, max_size=8)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[dict[str, str], list[str]]:
    """A state payload holding one value of every kind (and maybe more), each in some text."""
    values = [draw(strategy) for strategy in KINDS.values()]
    values += draw(st.lists(st.one_of(*KINDS.values()), max_size=3))
    keys = draw(st.lists(_word, min_size=len(values), max_size=len(values), unique=True))
    payload = {k: f"{draw(_word)} {v} {draw(_word)}" for k, v in zip(keys, values, strict=True)}
    return payload, values


class RawOtlpReceiver:
    """Keeps the raw bytes of every ``POST /v1/traces`` (a value in a span is in them)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RawOtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _until(c: httpx.Client, eid: str, ready: Any) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        view: dict[str, Any] = c.get(f"/executions/{eid}").json()
        if ready(view):
            return view
        time.sleep(0.02)
    raise AssertionError(f"{eid}: {view}")


def _cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        main(list(args))
    return out.getvalue()


def _assert_clean(where: str, text: str, values: list[str]) -> None:
    squeezed = "".join(text.split())  # a PDF's table may wrap a value across lines
    for value in values:
        assert value not in text, f"{where} shows {value!r}"
        assert "".join(value.split()) not in squeezed, f"{where} shows {value!r}"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, RawOtlpReceiver, Path]]:
    keys = tmp_path / "keys"
    init_keys(keys)
    with RawOtlpReceiver() as receiver:
        env = {
            "TETHER_AUDIT_KEYS": str(keys),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        with running_engine(tmp_path, env, modules="redaction_tools", cwd=HERE) as e:
            yield e, receiver, keys


def test_no_pii_leaves_through_any_exit(
    engine: tuple[Engine, RawOtlpReceiver, Path], tmp_path: Path
) -> None:
    e, receiver, keys = engine
    db = tmp_path / "engine.db"
    seen: list[str] = []
    with httpx.Client(base_url=e.url, timeout=DEADLINE) as c:
        assert c.post("/workflows", json={"ir": ir_of(FLOW)}).status_code == 201
        runs = iter(range(10_000))

        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(payloads(), _email, st.sampled_from(list(KINDS.values())).flatmap(lambda s: s))
        def one_run(drawn: tuple[dict[str, str], list[str]], approver: str, said: str) -> None:
            payload, values = drawn
            values = [*values, approver, said]
            seen.extend(values)
            body = {"workflow_id": "pii", "input": {"payload": payload, "key": f"k{next(runs)}"}}
            eid = c.post("/executions", json=body).json()["execution_id"]
            _until(c, eid, lambda v: v.get("pending_approvals"))
            exits = {
                "pending approvals": c.get(f"/executions/{eid}/approvals").text,
                "dashboard approvals": c.get("/views/approvals").text,
            }
            answer = c.post(
                f"/executions/{eid}/approve",
                json={"decision": "approved", "user_id": approver, "comment": f"ok {said}"},
            )
            assert answer.status_code == 200, answer.text
            view = _until(c, eid, lambda v: v["status"] == "completed")
            assert view["current_state"]["echoed"] != payload  # redacted, not dropped
            exits |= {
                "execution": json.dumps(view),
                "list": c.get("/executions").text,
                "events": c.get(f"/executions/{eid}/events").text,
                "states": c.get(f"/executions/{eid}/states", params={"full": "true"}).text,
                "state at 3": c.get(f"/executions/{eid}/states", params={"at": 3}).text,
                "approvals": c.get(f"/executions/{eid}/approvals").text,
                "dashboard list": c.get("/views/executions").text,
                "dashboard timeline": c.get(f"/views/executions/{eid}/timeline").text,
                "cli inspect": _cli("inspect", eid, "--engine", e.url),
                "cli events": _cli("events", eid, "--engine", e.url, "--json"),
                "logs": e.log.read_text(),
            }
            for fmt in ("json", "pdf"):
                out = tmp_path / f"bundle.{fmt}"
                _cli("audit", "export", eid, "--format", fmt, "-o", str(out), "--db", str(db),
                     "--keys", str(keys))  # fmt: skip
                exits[f"{fmt} bundle"] = (
                    out.read_text()
                    if fmt == "json"
                    else subprocess.run(
                        ["pdftotext", "-layout", str(out), "-"], capture_output=True,
                        text=True, check=True,
                    ).stdout
                )  # fmt: skip
            for where, text in exits.items():
                _assert_clean(where, text, values)
            assert "[REDACTED:" in exits["events"] and "[REDACTED:" in exits["json bundle"]

        one_run()
    assert e.stop() == 0  # SIGTERM: the engine exports the spans it still holds
    traces = b"".join(receiver.bodies)
    _assert_clean("traces", traces.decode("utf-8", "replace"), seen)
    assert b"execution pii@1" in traces and b"[REDACTED:" in traces  # the exit was used
    logs = e.log.read_text()
    assert "node_failed" in logs and "[REDACTED:" in logs
    _assert_clean("logs", logs, seen)


pytestmark = pytest.mark.skipif(
    not shutil.which("pdftotext"), reason="needs pdftotext (poppler-utils)"
)


PLAIN = """
workflow: {id: plain, version: "1"}
nodes:
  echo: {type: tool, tool: echo, input: {payload: $payload}, output_key: echoed, next: end}
"""


def test_the_engine_wide_hash_policy_correlates_equal_values(tmp_path: Path) -> None:
    """``TETHER_REDACT=hash``: a workflow with no policy of its own is redacted too, each value
    by a keyed hash made under a key the engine keeps outside the database (0600), so one
    person's email shows as one token across runs and another's as another."""
    keys = tmp_path / "keys"
    env = {"TETHER_REDACT": "hash", "TETHER_AUDIT_KEYS": str(keys)}
    with (
        running_engine(tmp_path, env, modules="redaction_tools", cwd=HERE) as e,
        httpx.Client(base_url=e.url, timeout=DEADLINE) as c,
    ):
        assert c.post("/workflows", json={"ir": ir_of(PLAIN)}).status_code == 201
        states = []
        for who in ("ann@example.com", "ann@example.com", "bob@example.com"):
            body = {"workflow_id": "plain", "input": {"payload": {"to": who}}}
            eid = c.post("/executions", json=body).json()["execution_id"]
            view = _until(c, eid, lambda v: v["status"] == "completed")
            assert "@example.com" not in json.dumps(view)
            states.append(view["current_state"]["echoed"]["to"])
    assert states[0] == states[1] != states[2] and states[0].startswith("[email:")
    assert (keys / "redaction.key").stat().st_mode & 0o777 == 0o600


def test_an_unusable_policy_stops_tether_dev_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "TETHER_REDACT": '{"mode": "hush"}', "TETHER_WORKER_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "dev", "--db", str(tmp_path / "x.db")],
        env=env, capture_output=True, text=True, timeout=DEADLINE, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "TETHER_REDACT" in done.stderr, done.stderr
