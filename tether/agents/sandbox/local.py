"""``sandbox: local``: model-written Python in a process of its own, never in the engine.

The child (``child_runner.py``, run by path with ``python -I``) fences itself in with
resource limits, Landlock, seccomp and an audit hook before it runs the code; this side adds
what the child cannot do for itself:

- a network namespace (``unshare --user --net``, when unprivileged user namespaces work
  here): the process has no interface but a loopback that is down, so no packet leaves it
  whatever the code does (kernel);
- a process group of its own, SIGKILLed at the wall-clock limit or once stdout and stderr
  together pass the output cap (and cleared after every run);
- a clean environment (no provider key or secret of the engine's reaches the code), a fresh
  scratch directory as its working directory, removed afterwards;
- its resource use as the kernel counted it (``wait4``).

Example::

    run = await LocalSandbox().run("print(sum(INPUT))", [1, 2, 3], SandboxLimits())
    run.stdout, run.exit_code, run.cpu_secs          # ('6\\n', 0, 0.02)
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from tether.agents.sandbox.limits import SandboxError, SandboxLimits, SandboxRun

RUNNER = Path(__file__).with_name("child_runner.py")
#: The child's exit codes (child_runner.EXIT_*).
_EXIT_MEMORY, _EXIT_REFUSED, _EXIT_SETUP = 101, 102, 103
_MARK = "[sandbox]"
_NAMESPACE = ("unshare", "--user", "--net", "--")


@dataclass
class _Child:
    """The running child's process id, for a cancel to kill its group from another task."""

    pid: int | None = None
    killed_for: str | None = None
    done: bool = False


@dataclass
class LocalSandbox:
    """Runs code in a child process; ``python`` is the interpreter (default this one's),
    ``namespace`` whether to ask for a network namespace (None: use one when it works)."""

    python: str = sys.executable
    namespace: bool | None = None
    #: The child's audit hook (its early, clear refusals); off only to test that the kernel
    #: layers hold on their own.
    audit_hook: bool = True
    _wrapper: tuple[str, ...] | None = field(default=None, repr=False)

    def layers(self) -> list[str]:
        """The engine's layers as they will apply (the child reports its own)."""
        netns = "netns: on" if self._prefix() else "netns: unavailable"
        return [netns, "process group: on", "clean env: on"]

    async def run(self, code: str, input: Any, limits: SandboxLimits) -> SandboxRun:
        child = _Child()
        try:
            return await anyio.to_thread.run_sync(
                self._run, code, input, limits, child, abandon_on_cancel=True
            )
        finally:
            if not child.done and child.pid is not None:  # cancelled: the thread sees EOF
                _kill_group(child.pid)

    def _prefix(self) -> tuple[str, ...]:
        if self._wrapper is None:
            self._wrapper = _NAMESPACE if self.namespace is not False and _unshare_works() else ()
            if self.namespace and not self._wrapper:
                raise SandboxError("run_code: a network namespace was required and unshare failed")
        return self._wrapper

    def _run(self, code: str, input: Any, limits: SandboxLimits, child: _Child) -> SandboxRun:
        scratch = tempfile.mkdtemp(prefix="tether-sandbox-")
        try:
            return self._run_in(scratch, code, input, limits, child)
        finally:
            child.done = True
            shutil.rmtree(scratch, ignore_errors=True)

    def _run_in(
        self, scratch: str, code: str, input: Any, limits: SandboxLimits, child: _Child
    ) -> SandboxRun:
        job = json.dumps(
            {"code": code, "input": input, "scratch": scratch,
             "limits": {**limits.as_dict(), "report_layers": True, "audit_hook": self.audit_hook}}
        ).encode()  # fmt: skip
        started = time.monotonic()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch, "TMPDIR": scratch}
        proc = subprocess.Popen(
            [*self._prefix(), self.python, "-I", str(RUNNER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=scratch, env=env, start_new_session=True, close_fds=True,
        )  # fmt: skip
        child.pid = proc.pid
        out, err = bytearray(), bytearray()
        try:
            self._feed(proc, job)
            self._pump(proc, out, err, limits, started, child)
        finally:
            _kill_group(proc.pid)  # whatever the code left behind in its group
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        wall_ms = int((time.monotonic() - started) * 1000)
        cpu = usage.ru_utime + usage.ru_stime
        stderr = err.decode("utf-8", "replace")
        layers: list[str] = self.layers()
        first, _, rest = stderr.partition("\n")
        if first.startswith(f"{_MARK} layers: "):  # written before the code ran
            layers += first.removeprefix(f"{_MARK} layers: ").split("; ")
            stderr = rest
        stopped, reason = _why_stopped(proc.returncode, child.killed_for, cpu, limits, stderr)
        if proc.returncode == _EXIT_SETUP:
            raise SandboxError(f"run_code: the sandbox could not be set up: {stderr.strip()}")
        return SandboxRun(
            exit_code=proc.returncode if proc.returncode >= 0 else None,
            stdout=out[: limits.output_bytes].decode("utf-8", "replace"),
            stderr=stderr[: limits.output_bytes],
            stopped=stopped, reason=reason, cpu_secs=cpu, max_rss_kb=usage.ru_maxrss,
            wall_ms=wall_ms, files=_files(scratch), layers=layers,
        )  # fmt: skip

    @staticmethod
    def _feed(proc: subprocess.Popen[bytes], job: bytes) -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(job)  # the child reads all of it before anything else
            proc.stdin.close()
        except BrokenPipeError:  # it died first: its exit status says why
            pass

    @staticmethod
    def _pump(
        proc: subprocess.Popen[bytes],
        out: bytearray,
        err: bytearray,
        limits: SandboxLimits,
        started: float,
        child: _Child,
    ) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        deadline = started + limits.wall_secs
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    child.killed_for = "timeout"
                    return
                for key, _ in sel.select(timeout=min(left, 0.5)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    key.data.extend(chunk)
                    if len(out) + len(err) > limits.output_bytes + 4096:  # + the layers line
                        child.killed_for = "output_limit"
                        return


def _why_stopped(
    code: int, killed_for: str | None, cpu: float, limits: SandboxLimits, stderr: str
) -> tuple[str | None, str]:
    if killed_for == "timeout":
        return (
            killed_for,
            f"wall-clock limit of {limits.wall_secs:g}s reached; process group killed",
        )
    if killed_for == "output_limit":
        return killed_for, f"output passed {limits.output_bytes} bytes; process group killed"
    # SIGXCPU comes only from the CPU limit; a SIGKILL near it is the hard limit one second
    # later (the kernel's rusage can read a little under what its limit counted).
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= limits.cpu_secs * 0.8):
        return "cpu_limit", f"CPU limit of {limits.cpu_secs:g}s reached"
    if code == _EXIT_MEMORY:
        return "memory_limit", f"memory limit of {limits.memory_mb} MB reached"
    if code == _EXIT_REFUSED:
        lines = [ln for ln in stderr.splitlines() if _MARK in ln]
        return "refused", lines[-1].split(_MARK, 1)[1].strip() if lines else "refused"
    if code < 0:
        return "killed", f"killed by signal {signal.Signals(-code).name}"
    return None, ""


def _files(scratch: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(Path(scratch).rglob("*"))[:50]:
        if path.is_file() and not path.is_symlink():
            found.append({"path": str(path.relative_to(scratch)), "bytes": path.stat().st_size})
    return found


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _unshare_works() -> bool:
    """Can this process make a user and network namespace (asked once per sandbox)?"""
    try:
        probe = subprocess.run([*_NAMESPACE, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0
