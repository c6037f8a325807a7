"""Building the ``tether`` parser loads no command's code, and ``tether dev`` loads no other
command's: a restarted engine (issue 19: every restart's start lands in its runs' latency)
pays only for the engine's own imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tether.cli.audit_command import KEYS_ENV

_PARSER_PROBE = """
import sys
from pathlib import Path
from tether.cli import build_parser
build_parser().parse_args(["dev"])
heavy = ("litestar", "uvicorn", "zmq", "httpx", "cryptography", "yaml", "structlog",
         "tether.runtime", "tether.server", "tether.agents", "tether.governance",
         "tether.deployment", "tether.fleet", "tether.embedded")
print(",".join(sorted({h for h in heavy for m in sys.modules if m == h or m.startswith(h + ".")})))
"""


def test_building_the_parser_imports_no_engine_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PARSER_PROBE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [""]


_DEV_PROBE = """
import sys
from pathlib import Path
from tether.cli import build_parser
build_parser().parse_args(["dev"])
import tether.cli.dev_engine  # what `tether dev`'s run() imports
others = ("tether.cli.audit_actions", "tether.cli.worker_process", "tether.deployment",
          "tether.fleet.worker_set", "tether.governance.pdf_report")
print(",".join(m for m in others if m in sys.modules))
"""


def test_tether_dev_imports_no_other_commands_code() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _DEV_PROBE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [""]


def test_the_clis_keys_variable_is_the_governance_ones() -> None:
    from tether.governance import keys

    assert KEYS_ENV == keys.KEYS_ENV


_HTTPX_PROBE = """
import sys
from pathlib import Path
import tether.cli.dev_engine, tether.server.app, tether.agents.kinds, tether.agents.a2a.client
print("httpx" in sys.modules)
"""


def test_an_engine_loads_httpx_only_when_a_call_sends() -> None:
    """httpx (with the click, rich and pygments its command line pulls in) was about a tenth
    of an engine start's imports; the agent kinds need it only to send a call."""
    out = subprocess.run(
        [sys.executable, "-c", _HTTPX_PROBE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["False"]


_APP_PROBE = """
import sys
from pathlib import Path
from tether.embedded import Runtime
from tether.server.app import create_app
from tether.server.config import ServerConfig
app = create_app(Runtime(sys.argv[1]), ServerConfig.from_env({}), open_runtime=False)
print(",".join(m for m in ("pydantic", "tether.ir.yaml_compiler") if m in sys.modules))
"""


def test_the_app_loads_neither_pydantic_nor_the_yaml_compiler(tmp_path: Path) -> None:
    """Litestar's pydantic plugins (its default when pydantic is importable) were about half of
    create_app; the YAML compiler is for a file nobody registered, not for a start."""
    out = subprocess.run(
        [sys.executable, "-c", _APP_PROBE, f"sqlite:///{tmp_path / 'j.db'}"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out == [""]


_HTTP_LAYER_PROBE = """
import sys
import tether.cli.dev_engine
from tether.server import ServerConfig
print(",".join(m for m in ("litestar", "uvicorn", "tether.server.app") if m in sys.modules))
"""


def test_tether_dev_opens_its_journal_before_it_imports_the_http_layer() -> None:
    """Litestar, its OpenAPI machinery and uvicorn were a third of a cold engine's imports:
    ``tether dev`` imports them (``tether.cli.dev_http``) once its runtime and worker port are
    open, so a restarted engine's workers rejoin meanwhile."""
    out = subprocess.run(
        [sys.executable, "-c", _HTTP_LAYER_PROBE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [""]
