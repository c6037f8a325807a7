"""The examples the README tells people to run, run as they would run them (a subprocess per
script), and the approval example driven through its approval and event embedded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tether import Runtime
from tether.ir import compile_yaml_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

from tools import add_one, pay, refund  # noqa: E402  (the examples' own tools)


@pytest.mark.parametrize(
    "script", ["fleet_demo.py", "agent_offline.py", "code_first.py", "audit_offline.py"]
)
def test_an_example_script_runs_with_one_command(script: str, tmp_path: Path) -> None:
    args = [str(tmp_path / "code_first.db")] if script == "code_first.py" else []
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if script == "fleet_demo.py":
        assert "result: {'n': 3}" in done.stdout and "steps run by: demo-worker" in done.stdout
    if script == "code_first.py":
        assert "'status': 'charged'" in done.stdout and "approval_received" in done.stdout
    if script == "audit_offline.py":
        assert "bundle verified" in done.stdout and "tool_calls: does not match" in done.stdout


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_payment_example_waits_for_a_person_then_for_the_bank(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=[add_one, pay, refund]) as rt:
        wf = rt.register(compile_yaml_file(EXAMPLES / "payment.yaml"))
        run = await rt.start(wf, {"amount": 50})
        with anyio.fail_after(10):
            while (await rt.get_execution(run.id)).status != "paused":
                await anyio.sleep(0)
        await rt.approve(run.id, "approved", "alice@example.com")
        with anyio.fail_after(10):
            while "cleared" not in (await rt.state(run.id)).waits:
                await anyio.sleep(0)
        await rt.send_event(run.id, "payment-cleared", {"ref": "tx-9"})
        result = await run.result(timeout=10)
    assert result["paid"] == "paid 50" and result["ref"] == "tx-9"
