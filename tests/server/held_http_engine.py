"""``python -m held_http_engine GATE ARGS...``: the ``tether ARGS`` command, in which the HTTP
layer (``tether.server.app``) cannot be imported until the file GATE exists: a cold engine's
slow imports, held open for as long as a test needs."""

from __future__ import annotations

import importlib.abc
import sys
import time
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType


class HoldHttpLayer(importlib.abc.MetaPathFinder):
    def __init__(self, gate: Path) -> None:
        self.gate = gate

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "tether.server.app":
            while not self.gate.exists():  # the test's hand on the import, not a wait for it
                time.sleep(0.01)
        return None  # the usual finders find it


if __name__ == "__main__":
    sys.meta_path.insert(0, HoldHttpLayer(Path(sys.argv[1])))
    from tether.cli import main

    raise SystemExit(main(sys.argv[2:]))
