"""What a sandboxed run may use, and what one came to.

Example::

    limits = SandboxLimits.parse({"cpu_secs": 2, "memory_mb": 128, "wall_secs": 5})
    limits.output_bytes          # 65536 (the default)
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tether.errors import NonRetryableError

#: Why a run was stopped, as journaled (``None``: it ran to its own end).
STOPS = ("timeout", "cpu_limit", "memory_limit", "output_limit", "refused", "killed")


class SandboxError(NonRetryableError):
    """The code could not be run at all (bad limits, a sandbox that cannot be set up); the
    node fails at once, saying why."""


class SandboxUnreachable(ConnectionError):
    """The remote sandbox service did not answer: the call is retried (never run locally
    instead)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per run: CPU seconds, address space in MB, wall-clock seconds (the process group is
    killed past it), bytes of stdout plus stderr kept (past it the run is killed), and the
    size of any one file written in the scratch directory."""

    cpu_secs: float = 5.0
    memory_mb: int = 256
    wall_secs: float = 10.0
    output_bytes: int = 64 * 1024
    file_bytes: int = 16 * 1024 * 1024

    @classmethod
    def parse(cls, raw: Any, base: SandboxLimits | None = None) -> SandboxLimits:
        """``raw`` (a node's ``limits`` mapping) over ``base``; a key that is unknown, or a
        value that is not a positive number within its ceiling, raises ``SandboxError``."""
        base = base or cls()
        if raw is None:
            return base
        if not isinstance(raw, dict):
            raise SandboxError(f"run_code: limits must be a mapping, got {raw!r}")
        known = {f.name: f for f in fields(cls)}
        values = asdict(base)
        for key, value in raw.items():
            if key not in known:
                raise SandboxError(
                    f"run_code: unknown limit {key!r} (known: {', '.join(sorted(known))})"
                )
            ceiling = _CEILINGS[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SandboxError(f"run_code: limit {key} must be a number, got {value!r}")
            if not 0 < value <= ceiling:
                raise SandboxError(f"run_code: limit {key} must be in (0, {ceiling}], got {value}")
            values[key] = type(getattr(base, key))(value)
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CEILINGS = {
    "cpu_secs": 3600, "memory_mb": 64 * 1024, "wall_secs": 3600,
    "output_bytes": 16 * 1024 * 1024, "file_bytes": 1024**3,
}  # fmt: skip


@dataclass(frozen=True)
class SandboxRun:
    """What one run came to: its exit code (``None`` when a signal ended it), its output
    (capped), why it was stopped (one of :data:`STOPS`, or ``None``) and what it used."""

    exit_code: int | None
    stdout: str
    stderr: str
    stopped: str | None = None
    reason: str = ""
    cpu_secs: float = 0.0
    max_rss_kb: int = 0
    wall_ms: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)

    def output(self) -> dict[str, Any]:
        """What goes to state (and to the model, for an agent's call)."""
        return {
            "exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr,
            "stopped": self.stopped, "reason": self.reason, "files": self.files,
        }  # fmt: skip

    def facts(self, code: str, where: str) -> dict[str, Any]:
        """What ``node_completed`` records beside it: the code's hash and what it used."""
        return {
            "sandbox": where, "code_sha256": code_digest(code), "exit_code": self.exit_code,
            "sandbox_stopped": self.stopped, "cpu_secs": round(self.cpu_secs, 3),
            "max_rss_kb": self.max_rss_kb, "wall_ms": self.wall_ms,
            "sandbox_layers": self.layers,
        }  # fmt: skip


def code_digest(code: str) -> str:
    return "sha256:" + hashlib.sha256(code.encode()).hexdigest()
