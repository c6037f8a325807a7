"""The layers of ../shared/DESIGN.md, checked on every import statement in the package
(imports inside functions too: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tether"

#: What each part of the package may import of Tether's, besides itself.
ALLOWED: dict[str, set[str]] = {
    # The kernel is usable on its own: nothing of Tether's but the clock.
    "actors": {"clock"},
    "clock": set(),
    "errors": set(),
    "log_throttle": set(),
    "logs": {"log_throttle"},
    "persistence": {"clock", "errors"},
    "ir": {"errors"},
    # Node kinds that do I/O and worker transports plug in from above.
    "runtime": {"actors", "clock", "errors", "logs", "persistence", "ir"},
    # Traces: spans made from the journal's records, above the runtime (OpenTelemetry SDK).
    "telemetry": {"clock", "errors", "logs", "persistence", "ir", "runtime"},
    "fleet": {"actors", "clock", "errors", "logs", "persistence", "ir", "runtime", "telemetry"},
    # Providers, the agent loop, MCP: executors plugged into the runtime's seam.
    "agents": {"actors", "clock", "errors", "logs", "persistence", "ir", "runtime"},
    # The audit log's verifier, signer and evidence bundles: above persistence and runtime
    # (it reads their records), below the server and the CLI that expose it.
    "governance": {"clock", "errors", "persistence", "ir", "runtime"},
    "server": {"actors", "clock", "errors", "logs", "persistence", "ir", "runtime", "agents"}
    | {"telemetry", "governance"},
    "testing": {"actors", "clock", "errors", "logs", "persistence", "ir", "runtime", "agents"}
    | {"telemetry"},
    "cli": {"actors", "clock", "errors", "logs", "persistence", "ir", "runtime", "fleet"}
    | {"server", "agents", "embedded", "deployment", "telemetry", "governance"},
    # tether.Runtime: the runtime with the agents' node kinds plugged in (the facade's).
    "embedded": {"ir", "runtime", "agents"},
    # A client of an engine's HTTP API: it sends IR and schedules, and runs nothing itself.
    "deployment": {"errors", "ir", "runtime"},
    # Other frameworks on Tether (optional extras): above everything but the facades.
    "integrations": {"actors", "clock", "errors", "logs", "persistence", "ir", "runtime"}
    | {"agents", "embedded"},
}


def _part(module: str) -> str:
    """``tether.runtime.state`` -> ``runtime``; ``tether`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tether":  # from tether import ir
                found += [(node.lineno, f"tether.{a.name}") for a in node.names]
            elif node.module.startswith("tether."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tether.")]
    return found


def test_every_import_points_down_the_layers() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        part = _part(".".join(rel.with_suffix("").parts))
        if part == "__init__":
            continue  # the package facade names the public surface of every layer
        allowed = ALLOWED[part] | {part}
        for line, module in _imports(path):
            if _part(module) not in allowed:
                wrong.append(f"{rel}:{line}: {part} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_every_part_of_the_package_has_a_rule() -> None:
    parts = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    parts |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert parts <= set(ALLOWED), parts - set(ALLOWED)
