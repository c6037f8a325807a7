"""``jamjet run workflow.yaml`` against the engine: the SDK sends the file's name as the
workflow id. An id that names a YAML file under the engine's folder (where ``tether dev`` was
started, as ``jamjet dev`` is started in a project) and no registered workflow is that file,
compiled (with its ``jamjet.toml``) and registered before the run starts.

Only files under that folder: a client cannot make the engine read ``../../etc/x.yaml``.

Example::

    path = workflow_file("workflow.yaml", Path.cwd())    # Path(".../workflow.yaml") or None
"""

from __future__ import annotations

from pathlib import Path

from tether.errors import InvalidInput

_SUFFIXES = (".yaml", ".yml")


def workflow_file(ref: str, root: Path) -> Path | None:
    """The YAML file ``ref`` names under ``root``, or None when it names none."""
    if not ref.endswith(_SUFFIXES):
        return None
    try:
        base = root.resolve()
        path = (base / ref).resolve()
        found = path.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long: no such file
        return None
    if not path.is_relative_to(base):
        raise InvalidInput(f"workflow file {ref!r} is outside the engine's folder")
    return path if found else None
