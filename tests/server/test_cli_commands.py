"""The ``tether`` commands that talk to a running engine, run as a user runs them: as
subprocesses against ``tether dev`` on loopback, reading stdout, stderr and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server_http import DEADLINE, EXAMPLES, Engine, edited_counter, running_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path) as e:
        yield e


def tether(
    engine_url: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        env={**os.environ, "TETHER_ENGINE_URL": engine_url, **(env or {})},
        capture_output=True, text=True, timeout=DEADLINE, cwd=cwd,
    )  # fmt: skip


def test_run_a_file_follows_it_live_and_exits_0_on_completed(engine: Engine) -> None:
    done = tether(engine.url, "run", str(EXAMPLES / "counter.yaml"), "-i", '{"n": 0}')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("▸ exec_") and lines[0].endswith(" started")
    steps = [ln.split()[1:3] for ln in lines[1:-2]]  # each node as it starts and completes
    assert steps == [[f"[{n}]", mark] for n in ("first", "second", "third") for mark in "▶✓"]
    assert lines[-2:] == ["▸ completed · 3 nodes", '    result: {"n": 3}']
    assert "\x1b[" not in done.stdout  # piped: plain lines
    eid = lines[0].split()[1]
    again = tether(engine.url, "run", "counter", "-i", '{"n": 5}', "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["output"] == {"n": 8}
    listed = tether(engine.url, "executions", "--json")  # one JSON document
    assert eid in {row["execution_id"] for row in json.loads(listed.stdout)}
    table = tether(engine.url, "executions").stdout.splitlines()
    assert table[0].split() == ["EXECUTION", "STATUS", "WORKFLOW", "STARTED"]
    events = tether(engine.url, "events", eid, "--node", "second", "--json")
    kinds = [e["kind"]["type"] for e in json.loads(events.stdout)["events"]]
    assert kinds == ["node_scheduled", "node_started", "node_completed"]
    nosuch = tether(engine.url, "events", eid, "--node", "nosuchnode")
    assert nosuch.returncode == 1 and "no records of node 'nosuchnode'" in nosuch.stderr
    assert "first, second, third" in nosuch.stderr
    shown = tether(engine.url, "inspect", eid)
    assert shown.returncode == 0 and "completed" in shown.stdout and '"n": 3' in shown.stdout
    assert 'output: {"n": 3}' in shown.stdout and shown.stdout.rstrip().endswith("3 nodes")
    workflows = tether(engine.url, "workflows").stdout.splitlines()
    assert workflows[0].split() == ["WORKFLOW", "DIGEST", "REGISTERED"]
    assert "counter@1" in workflows[1]
    bogus = tether(engine.url, "executions", "--status", "bogus")
    assert bogus.returncode == 2 and "invalid choice: 'bogus'" in bogus.stderr


def test_user_errors_are_one_line_never_a_traceback(engine: Engine, tmp_path: Path) -> None:
    bad_file = tether(engine.url, "run", str(EXAMPLES / "invalid.yaml"))
    assert bad_file.returncode == 2 and "invalid.yaml:15:5" in bad_file.stderr
    unknown = tether(engine.url, "inspect", "exec_nope")
    assert unknown.returncode == 1 and "no execution 'exec_nope'" in unknown.stderr
    bad_input = tether(engine.url, "run", "counter", "-i", "[1]")
    assert bad_input.returncode == 2 and "JSON object" in bad_input.stderr
    away = tether("http://127.0.0.1:9", "executions")
    assert away.returncode == 1 and "cannot reach the engine" in away.stderr
    checked = tether(engine.url, "validate", str(EXAMPLES / "counter.yaml"))
    assert checked.returncode == 0 and "valid: workflow counter@1" in checked.stdout
    a2a = tmp_path / "a2a.yaml"
    a2a.write_text(
        'workflow: {id: ask, version: "1"}\n'
        "nodes:\n  ask: {type: a2a_task, remote_agent: http://127.0.0.1:9, next: end}\n"
    )
    delegating = tether(engine.url, "validate", str(a2a))  # a2a_task runs (issue 21)
    assert delegating.returncode == 0 and "valid: workflow ask@1" in delegating.stdout
    for done in (bad_file, unknown, bad_input, away):
        assert "Traceback" not in done.stderr


def test_approve_and_cancel_from_the_cli(engine: Engine, tmp_path: Path) -> None:
    flow = tmp_path / "pay.yaml"
    flow.write_text(
        """
workflow: {id: pay, version: "1", start: review, state_schema: {n: {type: integer}}}
nodes:
  review: {type: human_approval, description: "Pay?", next: add}
  add: {type: tool, tool: add_one, input: {n: $n}, output_key: n, next: end}
"""
    )
    started = tether(engine.url, "run", str(flow), "-i", '{"n": 1}', "--no-follow", "--json")
    eid = json.loads(started.stdout)["execution_id"]
    nothing = tether(engine.url, "approve", "exec_nope", "approved", "--user", "al")
    assert nothing.returncode == 1
    for _ in range(200):
        if "paused" in tether(engine.url, "inspect", eid).stdout:
            break
    undecided = tether(engine.url, "approve", eid, "--user", "al")  # never a default decision
    assert undecided.returncode == 2 and "approved|rejected" in undecided.stderr
    bogus = tether(engine.url, "approve", eid, "maybe")
    assert bogus.returncode == 2 and "not 'maybe'" in bogus.stderr
    ok = tether(engine.url, "approve", eid, "approved", "--user", "al", "--comment", "fine")
    assert ok.returncode == 0 and "approved at review by al" in ok.stdout
    other = tether(engine.url, "run", str(flow), "-i", '{"n": 1}', "--no-follow", "--json")
    oid = json.loads(other.stdout)["execution_id"]
    cancelled = tether(engine.url, "cancel", oid)
    assert cancelled.returncode == 0 and f"{oid}: cancelled" in cancelled.stdout
    again = tether(engine.url, "cancel", oid)  # nothing to do: said, and not a success
    assert again.returncode == 1 and "already cancelled; nothing was done" in again.stderr
    approvals = httpx.get(f"{engine.url}/executions/{oid}/approvals").json()
    assert approvals["pending"] == []  # a cancelled run waits for nobody


def test_a_workflow_version_is_its_content_across_folders_and_restarts_I13(
    engine: Engine, tmp_path: Path
) -> None:
    """`tether run file.yaml`: the same file from any folder runs, before and after an engine
    restart; the file edited under the same version is refused (409) every time, naming both
    content digests, and the registered definition is the one that runs."""
    here, there = tmp_path / "here", tmp_path / "there"
    for folder in (here, there):
        folder.mkdir()
        (folder / "counter.yaml").write_text((EXAMPLES / "counter.yaml").read_text())
    first = tether(engine.url, "run", "counter.yaml", "-i", '{"n": 0}', "--json", cwd=here)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["output"] == {"n": 3}
    [listed] = json.loads(tether(engine.url, "workflows", "--json").stdout)
    digest = listed["digest"]
    assert digest.startswith("sha256:") and len(digest) == 71
    assert digest[:19] in tether(engine.url, "workflows").stdout
    edited = there / "edited.yaml"
    edited.write_text(edited_counter())
    for restart in (False, True, True):
        if restart:
            engine.stop()
            engine.start()
        same = tether(engine.url, "run", "counter.yaml", "-i", '{"n": 1}', "--json", cwd=there)
        assert same.returncode == 0, same.stderr
        assert json.loads(same.stdout)["output"] == {"n": 4}
        for _ in range(2):
            refused = tether(engine.url, "run", "edited.yaml", "-i", '{"n": 0}', cwd=there)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr
            assert digest[:19] in refused.stderr and "new version" in refused.stderr
        by_id = tether(engine.url, "run", "counter", "-i", '{"n": 0}', "--json")
        assert json.loads(by_id.stdout)["output"] == {"n": 3}  # the registered content
    assert json.loads(tether(engine.url, "workflows", "--json").stdout)[0]["digest"] == digest


def test_run_version_flag_is_honoured_or_refused_never_ignored_I13(engine: Engine) -> None:
    counter = str(EXAMPLES / "counter.yaml")
    other = tether(engine.url, "run", counter, "--version", "2", "-i", '{"n": 0}')
    assert other.returncode == 2 and "--version 2" in other.stderr, other.stderr
    assert "counter@" not in tether(engine.url, "workflows").stdout  # nothing registered
    same = tether(engine.url, "run", counter, "--version", "1", "-i", '{"n": 0}', "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["output"] == {"n": 3}
    unknown = tether(engine.url, "run", "counter", "--version", "9", "-i", '{"n": 0}')
    assert unknown.returncode == 1 and "counter@9" in unknown.stderr, unknown.stderr


def test_the_engine_logs_json_lifecycle_lines_when_not_on_a_terminal(engine: Engine) -> None:
    done = tether(engine.url, "run", str(EXAMPLES / "counter.yaml"), "-i", '{"n": 0}', "--json")
    eid = json.loads(done.stdout)["execution_id"]
    lines = [json.loads(ln) for ln in engine.log.read_text().splitlines() if ln.startswith("{")]
    mine = {ln["event"]: ln for ln in lines if ln.get("execution_id") == eid}
    assert mine["execution_started"]["workflow"] == "counter@1"
    assert mine["execution_ended"]["status"] == "completed"
    for line in mine.values():
        assert {"timestamp", "level", "logger"} <= set(line)


WAITING = """
workflow: {id: waiting, version: "1", start: review}
nodes:
  review: {type: human_approval, description: "Ship it?", next: hold}
  hold: {type: wait, event: go-ahead, duration: 1d, next: end}
"""


def test_a_run_that_waits_says_for_what_and_the_command_that_answers_it(
    engine: Engine, tmp_path: Path
) -> None:
    flow = tmp_path / "waiting.yaml"
    flow.write_text(WAITING)
    run = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "run", str(flow)],
        env={**os.environ, "TETHER_ENGINE_URL": engine.url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert run.stdout is not None
        seen: list[str] = []

        def until(text: str) -> str:
            for line in run.stdout:  # type: ignore[union-attr]  # blocks on the real output
                seen.append(line.rstrip())
                if text in line:
                    return line.strip()
            raise AssertionError(f"no {text!r} in {seen}")

        eid = until(" started").split()[1]
        assert "waits for a person's approval: Ship it?" in until("[review]")
        command = until("answer:").removeprefix("answer:").split("(or")[0].split()
        assert command == ["tether", "approve", eid, "approved"]
        answered = tether(engine.url, *command[1:], "--user", "al")
        assert answered.returncode == 0, answered.stderr
        assert "waits for event 'go-ahead'" in until("[hold]")
        send = until("send it:").removeprefix("send it:").split()
        assert send[:4] == ["tether", "send-event", eid, "go-ahead"]
        sent = tether(engine.url, *send[1:4], "--payload", '{"ok": true}')
        assert sent.returncode == 0 and "event 'go-ahead' sent" in sent.stdout
        assert "completed · 2 nodes" in until("completed ·")
        assert run.wait(timeout=DEADLINE) == 0
    finally:
        run.kill()
        run.wait()


def test_watch_re_attaches_to_a_run_showing_branches_and_fan_outs(engine: Engine) -> None:
    started = tether(
        engine.url, "run", str(EXAMPLES / "branching.yaml"), "-i", '{"n": 5}', "--no-follow",
        "--json",
    )  # fmt: skip
    eid = json.loads(started.stdout)["execution_id"]
    watched = tether(engine.url, "watch", eid)
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert "▸ [pick]       → big" in lines  # the branch with its choice
    assert any(ln.startswith("▸ [fan]") and "→" in ln for ln in lines)  # the fan-out
    assert "▸ [big]        ✓" in "\n".join(lines)
    assert lines[-1].startswith("    result: ")


def test_a_failed_tool_is_counted_and_its_error_type_said_once(
    engine: Engine, tmp_path: Path
) -> None:
    """Found re-walking the first hour: `tether run` said "0 nodes" for a run whose one node
    failed (inspect said 1), and inspect said "ValueError ValueError: ..." when the error
    text already names its type."""
    flow = tmp_path / "big.yaml"
    flow.write_text(
        'workflow: {id: big, version: "1", start: a}\n'
        "nodes:\n"
        "  a: {type: tool, tool: fails_when_big, retry: {max_attempts: 1}, next: end}\n"
    )
    done = tether(engine.url, "run", str(flow), "-i", '{"n": 9}')
    assert done.returncode == 1
    last = done.stdout.splitlines()[-1]
    assert last.startswith("▸ failed · 1 node · node 'a' failed"), last
    shown = tether(engine.url, "inspect", done.stdout.split()[1]).stdout
    [failed] = [ln for ln in shown.splitlines() if "✗ attempt 1" in ln]
    assert failed.endswith("✗ attempt 1: ValueError: too big"), failed
    assert "Traceback (most recent call last)" in shown and 'raise ValueError("too big")' in shown
