"""Sandboxed runs of model-written code: the ``run_code`` node and the ``run_code`` tool an
agent may be given. ``sandbox: local`` runs it in a fenced child process
(:mod:`tether.agents.sandbox.local`), ``sandbox: remote`` on the service at
``TETHER_SANDBOX_URL`` (:mod:`tether.agents.sandbox.remote`); never in the engine.

Example::

    nodes:
      compute: {type: run_code, code: $script, input: {rows: $rows},
                limits: {cpu_secs: 2, memory_mb: 128, wall_secs: 5}, output_key: result}
"""

from tether.agents.sandbox.caller import AGENT_TOOL, NODE_TOOL, RunCodeCaller
from tether.agents.sandbox.limits import (
    SandboxError,
    SandboxLimits,
    SandboxRun,
    SandboxUnreachable,
    code_digest,
)
from tether.agents.sandbox.local import LocalSandbox
from tether.agents.sandbox.remote import RemoteSandbox

__all__ = [
    "AGENT_TOOL",
    "NODE_TOOL",
    "LocalSandbox",
    "RemoteSandbox",
    "RunCodeCaller",
    "SandboxError",
    "SandboxLimits",
    "SandboxRun",
    "SandboxUnreachable",
    "code_digest",
]
