"""The local sandbox on its own: model-written code in a child process that loops forever,
allocates without bound, opens a socket, writes outside its directory, forks without end or
floods its output is stopped, with a clear reason, and nothing of it is left running. The
kernel layers are checked with the child's audit hook off, so each holds on its own."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tether.agents.sandbox import LocalSandbox, SandboxLimits, code_digest

pytestmark = pytest.mark.anyio

FAST = SandboxLimits(cpu_secs=1, memory_mb=128, wall_secs=20, output_bytes=4096)


def _no_process_left() -> None:
    """No process of ours is still running a sandbox child (a stray would be a zombie child
    of this process or an orphan whose command line names the runner)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        assert b"child_runner.py" not in cmdline, f"stray sandbox process {entry.name}"


async def test_code_runs_with_its_input_and_its_use_is_measured() -> None:
    run = await LocalSandbox().run("print(sum(INPUT['xs']))", {"xs": [1, 2, 3]}, FAST)
    assert (run.exit_code, run.stdout, run.stopped) == (0, "6\n", None)
    assert run.wall_ms > 0 and run.max_rss_kb > 0
    facts = run.facts("print(sum(INPUT['xs']))", "local")
    assert facts["code_sha256"] == code_digest("print(sum(INPUT['xs']))")
    assert any(layer.startswith("seccomp") for layer in run.layers)


async def test_an_infinite_loop_is_stopped_at_its_cpu_limit() -> None:
    run = await LocalSandbox().run("while True:\n    pass\n", None, FAST)
    assert run.stopped == "cpu_limit", run
    assert run.exit_code is None and "CPU limit of 1s" in run.reason
    assert run.cpu_secs >= 0.9
    _no_process_left()


async def test_a_run_past_its_wall_clock_is_killed_with_its_group() -> None:
    limits = SandboxLimits(cpu_secs=30, wall_secs=1)
    run = await LocalSandbox().run(
        "import time\nprint('up', flush=True)\ntime.sleep(60)\n", None, limits
    )
    assert run.stopped == "timeout", run
    assert run.stdout == "up\n" and "process group killed" in run.reason
    _no_process_left()


async def test_unbounded_allocation_stops_at_the_memory_limit() -> None:
    code = "hoard = []\nwhile True:\n    hoard.append(bytearray(10**6))\n"
    run = await LocalSandbox().run(code, None, FAST)
    assert run.stopped == "memory_limit", run
    assert run.exit_code == 101 and "128 MB" in run.reason
    assert run.max_rss_kb > 0


async def test_opening_a_socket_is_refused() -> None:
    code = "import socket\nsocket.create_connection(('127.0.0.1', 9))\n"
    run = await LocalSandbox().run(code, None, FAST)
    assert run.stopped == "refused", run
    assert "network access is refused" in run.reason


async def test_writing_outside_the_scratch_directory_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    target = tmp_path / "escaped.txt"
    code = f"open({str(target)!r}, 'w').write('x')\n"
    run = await LocalSandbox().run(code, None, FAST)
    assert run.stopped == "refused" and "outside the scratch directory" in run.reason, run
    assert not target.exists()
    inside = await LocalSandbox().run("open('notes.txt', 'w').write('kept')", None, FAST)
    assert inside.exit_code == 0 and inside.files == [{"path": "notes.txt", "bytes": 4}]


async def test_a_fork_bomb_is_refused_and_leaves_no_process() -> None:
    code = "import os\nwhile True:\n    os.fork()\n"
    run = await LocalSandbox().run(code, None, FAST)
    assert run.stopped == "refused" and "os.fork" in run.reason, run
    _no_process_left()


async def test_an_output_flood_is_cut_at_the_cap() -> None:
    run = await LocalSandbox().run("while True:\n    print('x' * 1000)\n", None, FAST)
    assert run.stopped == "output_limit", run
    assert len(run.stdout) <= FAST.output_bytes
    _no_process_left()


async def test_the_engines_environment_never_reaches_the_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-engine-secret")
    run = await LocalSandbox().run("import os\nprint(sorted(os.environ))", None, FAST)
    assert "OPENAI_API_KEY" not in run.stdout and run.exit_code == 0


@pytest.mark.parametrize(
    ("layer", "code", "error"),
    [
        ("seccomp: on", "import socket\nsocket.socket()", "Operation not permitted"),
        ("seccomp: on", "import os\nos.fork()", "Operation not permitted"),
        ("seccomp: on", "import os\nos.execv('/bin/true', ['true'])", "Operation not permitted"),
        ("landlock: abi", "open('/tmp/tether-sandbox-escape', 'w')", "Permission denied"),
    ],
)
async def test_the_kernel_layers_hold_without_the_audit_hook(
    layer: str, code: str, error: str
) -> None:
    run = await LocalSandbox(audit_hook=False).run(code, None, FAST)
    if not any(on.startswith(layer) for on in run.layers):
        pytest.skip(f"{layer!r} is not available here: {run.layers}")
    assert run.exit_code == 1 and error in run.stderr, run
    assert not Path("/tmp/tether-sandbox-escape").exists()


async def test_the_network_namespace_has_no_way_out() -> None:
    sandbox = LocalSandbox(audit_hook=False)
    if "netns: on" not in sandbox.layers():
        pytest.skip("unprivileged user namespaces are not available here")
    # Seccomp refuses sockets before any packet could go; read the interfaces from /proc.
    run = await sandbox.run("print(open('/proc/net/dev').read())", None, FAST)
    interfaces = [ln.split(":")[0].strip() for ln in run.stdout.splitlines()[2:] if ":" in ln]
    assert interfaces == ["lo"], run.stdout


async def test_a_cancelled_run_kills_its_child() -> None:
    import anyio

    sandbox = LocalSandbox()
    limits = SandboxLimits(cpu_secs=60, wall_secs=60)
    with anyio.move_on_after(1.0):
        await sandbox.run("import time\ntime.sleep(60)", None, limits)
    with anyio.fail_after(10):
        while True:  # the abandoned thread reaps it; poll with a deadline
            try:
                _no_process_left()
                break
            except AssertionError:
                await anyio.sleep(0.05)
    assert signal.SIGKILL  # the group was killed, not waited out
