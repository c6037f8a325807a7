"""``tether run`` following its execution: a line per journal event as it happens, and for a
run that stops to wait, what it waits for and the exact command that answers it.

Example::

    out = RunPrinter(quiet=False, execution_id=eid)
    view = follow_run(api, eid, out, timeout=None)     # returns the final execution view
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from tether.cli.api_client import CliError, EngineApi
from tether.cli.strategy_lines import strategy_line
from tether.persistence.contract import TERMINAL_STATUSES


def follow_run(api: EngineApi, eid: str, out: RunPrinter, timeout: float | None) -> dict[str, Any]:
    """Print the run's events until it ends (or ``timeout`` seconds pass: it goes on), then
    its result."""
    seen = 0
    nodes: set[str] = set()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        view: dict[str, Any] = api.get(f"/executions/{eid}")
        for event in api.get(f"/executions/{eid}/events", from_seq=seen + 1)["events"]:
            seen = event["sequence"]
            out.event(event, nodes)
        out.held(view.get("held") or [])
        if view["status"] in TERMINAL_STATUSES:
            detail = f" · {view['error']}" if view.get("error") else ""
            count = f"{len(nodes)} node{'' if len(nodes) == 1 else 's'}"
            out.line(f"{view['status']} · {count}{detail}", ok=view["status"] == "completed")
            if view.get("output") is not None:
                out.hint(f"result: {json.dumps(view['output'], sort_keys=True)}")
            return view
        if deadline is not None and time.monotonic() > deadline:
            out.status(None)
            raise CliError(f"{eid} still {view['status']} after {timeout:g}s (it goes on)")
        out.status(out.running_line())
        time.sleep(0.1)


class RunPrinter:
    """Lines for people (colour on a terminal, plain when piped); silent when ``quiet``."""

    def __init__(self, quiet: bool, execution_id: str) -> None:
        self.quiet = quiet
        self.execution_id = execution_id
        self.tty = sys.stdout.isatty()
        self.colour = self.tty and not os.environ.get("NO_COLOR")
        #: Nodes handed out and not settled: when (this process's clock) and which attempt.
        self.running: dict[str, tuple[float, int]] = {}
        self._status = ""
        #: Holds already said (node, tool): each is said once.
        self._holds_said: set[tuple[str, str]] = set()

    def line(self, text: str, ok: bool | None = None) -> None:
        if self.quiet:
            return
        self.status(None)
        if self.colour and ok is not None:
            text = f"\x1b[{32 if ok else 31}m{text}\x1b[0m"
        print(f"▸ {text}", flush=True)

    def hint(self, text: str) -> None:
        """An indented line under the event it explains (a command to run, say)."""
        if not self.quiet:
            self.status(None)
            print(f"    {text}", flush=True)

    def status(self, text: str | None) -> None:
        """The line that says what runs now, rewritten in place on a terminal (never when
        piped: a log keeps only the events)."""
        if self.quiet or not self.tty or (text or "") == self._status:
            return
        print("\r\x1b[K" + (text or ""), end="", flush=True)
        self._status = text or ""

    def running_line(self) -> str | None:
        if not self.running:
            return None
        now = time.monotonic()
        parts = [
            f"[{node}] {now - since:.1f}s" + (f" (attempt {attempt})" if attempt > 1 else "")
            for node, (since, attempt) in sorted(self.running.items())
        ]
        return "  … running " + ", ".join(parts)

    def event(self, event: dict[str, Any], nodes: set[str]) -> None:
        kind = event["kind"]
        node = kind.get("node_id")
        label = f"[{node}]"
        attempt = f" (attempt {kind['attempt']})" if kind.get("attempt", 1) > 1 else ""
        match kind["type"]:
            case "node_scheduled":
                self.running[node] = (time.monotonic(), kind.get("attempt", 1))
                if not self.tty:  # a terminal shows it on the running line instead
                    self.line(f"{label:<12} ▶ started{attempt}", ok=None)
            case "node_completed" if kind.get("dispatch", 0) > 0:
                self.running.pop(node, None)
                nodes.add(node)
                ms = kind.get("duration_ms", 0)
                self.line(f"{label:<12} ✓ completed {ms:>5}ms{attempt}", ok=True)
            case "node_completed" if str(node).startswith("@"):  # a code-first body's value
                self.line(f"{label:<12} = recorded", ok=None)
            case "node_completed":  # a control node, routed in the fold
                nodes.add(node)
                targets = (kind.get("output") or {}).get("next") or []
                to = ", ".join(targets) if isinstance(targets, list) else str(targets)
                self.line(f"{label:<12} → {to or 'end'}", ok=None)
            case "node_failed":
                self.running.pop(node, None)
                nodes.add(node)  # it ran, and failed: counted as inspect counts it
                self.line(f"{label:<12} ✗ {kind.get('error', 'failed')}{attempt}", ok=False)
            case "node_parked":
                self.running.pop(node, None)
                self.line(f"{label:<12} … rate limited, parked", ok=None)
            case "node_waiting":
                self._waiting(label, kind)
            case "approval_received":
                nodes.add(node)
                self.line(f"{label:<12} ✓ {kind['decision']} by {kind['user_id']}", ok=True)
            case "wait_completed":
                nodes.add(node)
                self.line(f"{label:<12} ✓ by {kind['by']}", ok=True)
            case _:  # a strategy agent's rounds, verdicts and limit
                said = strategy_line(kind)
                if said is not None:
                    self.line(f"{label:<12} {said}", ok=False if said[0] == "!" else None)

    def held(self, holds: list[dict[str, Any]]) -> None:
        """Nodes the engine holds until a worker serving their tool joins (said once)."""
        for h in holds:
            if (h["node_id"], h["tool"]) in self._holds_said:
                continue
            self._holds_said.add((h["node_id"], h["tool"]))
            self.line(f"{'[' + h['node_id'] + ']':<12} … {h['reason']}", ok=None)
            self.hint(f"start one: tether worker --engine tcp://ENGINE:7701 --queue "
                      f"{_quoted(h['queue'])} --modules <the module defining it>")  # fmt: skip

    def _waiting(self, label: str, kind: dict[str, Any]) -> None:
        eid = self.execution_id
        fires = _when(kind.get("fire_at_ms"))
        if kind.get("approval"):
            about = f": {kind['description']}" if kind.get("description") else ""
            self.line(f"{label:<12} … waits for a person's approval{about}", ok=None)
            self.hint(f"answer: tether approve {eid} approved   (or: rejected)")
            if fires:
                self.hint(f"no decision by {fires} ends it as its on_timeout says")
            return
        key = kind.get("correlation_key")
        if key:
            self.line(f"{label:<12} … waits for event {key!r}", ok=None)
            self.hint(f"send it: tether send-event {eid} {_quoted(key)} --payload '{{...}}'")
            if fires:
                self.hint(f"or the timer fires at {fires}")
            return
        self.line(f"{label:<12} … waits until {fires or 'its timer fires'}", ok=None)


def _when(at_ms: Any) -> str | None:
    if not isinstance(at_ms, int):
        return None
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    left = at_ms / 1000 - time.time()
    soon = f" (in {_duration(left)})" if left > 0 else ""
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") + soon


def _duration(secs: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs / size:.1f}{unit}"
    return f"{secs:.0f}s"


def _quoted(text: str) -> str:
    return text if text.replace("-", "").replace("_", "").isalnum() else json.dumps(text)
