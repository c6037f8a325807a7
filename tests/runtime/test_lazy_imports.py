"""The runtime's import path leaves the YAML compiler and croniter out until they are used:
an engine restarting to recover its runs pays only for what recovery needs."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
from tether import Runtime, tool
import tether.persistence, tether.runtime.records
print(",".join(m for m in ("yaml", "croniter", "tether.ir.yaml_compiler") if m in sys.modules))
from tether.ir import compile_yaml_text
from tether.runtime.schedules import parse_cron
parse_cron("*/5 * * * *")
print(",".join(m for m in ("yaml", "croniter", "tether.ir.yaml_compiler") if m in sys.modules))
"""


def test_yaml_and_croniter_load_on_first_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["", "yaml,croniter,tether.ir.yaml_compiler"]


_ENGINE_PROBE = """
import sys
import tether.cli, tether.cli.dev_command, tether.server.app, tether.agents.kinds
print(",".join(sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] == "mcp"})))
from tether.agents.mcp import McpManager
print(",".join(sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] == "mcp"})))
"""


def test_the_mcp_sdk_loads_only_when_an_mcp_server_is_used() -> None:
    """The SDK cost an engine start (and so every recovery after a crash) about a second and
    a half of imports on a loaded machine, for workflows that call no MCP server."""
    out = subprocess.run(
        [sys.executable, "-c", _ENGINE_PROBE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["", "mcp"]


_NO_OTEL_PROBE = """
import sys
sys.modules["opentelemetry"] = None  # as if the tether[otel] extra were not installed
import tether.cli, tether.cli.dev_command, tether.server.app, tether.fleet.worker
from tether.telemetry.setup import tracing_from_env
print("started without the SDK")
"""


def test_an_engine_without_the_otel_extra_starts_and_one_with_it_loads_no_sdk_untraced() -> None:
    """The SDK was imported by every server start to answer 'is tracing asked for?', which
    also made the ``tether[otel]`` extra a hard requirement of ``tether dev``."""
    out = subprocess.run(
        [sys.executable, "-c", _NO_OTEL_PROBE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["started without the SDK"]
    probe = (
        "import sys, tether.cli, tether.server.app, tether.fleet.worker\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["False"]
