"""Worker transports added after construction (``Runtime.add_transport``): opened inside the
runtime's start, after those given to the constructor and before ``async with`` hands the
runtime over, so a server's HTTP workers' leases are adopted before the restart's adoption
grace can run out (see tether.server.http_worker_entrance)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tether import Runtime, tool
from tether.runtime.internals import RuntimeInternals

pytestmark = pytest.mark.anyio


@tool
async def noop() -> int:
    return 0


class Recorder:
    """A transport that notes when it was opened, and whether the runtime ran then."""

    def __init__(self, name: str, opened: list[str]) -> None:
        self.name = name
        self.opened = opened

    async def open(self, internals: RuntimeInternals, stack: AsyncExitStack) -> None:
        assert internals.services.store is not None  # the runtime is up: services exist
        self.opened.append(self.name)
        stack.callback(self.opened.append, f"{self.name} closed")


async def test_an_added_transport_opens_during_the_start_after_the_given_ones(
    tmp_path: Path,
) -> None:
    opened: list[str] = []
    rt = Runtime(f"sqlite:///{tmp_path / 'r.db'}", tools=[noop],
                 transports=[Recorder("given", opened)])  # fmt: skip
    added = Recorder("added", opened)
    rt.add_transport(added)
    async with rt:
        assert opened == ["given", "added"]  # both before the body runs
        with pytest.raises(RuntimeError, match="add it before it starts"):
            rt.add_transport(Recorder("late", opened))
    assert opened[2:] == ["added closed", "given closed"]
    rt.remove_transport(added)
    opened.clear()
    async with rt:
        assert opened == ["given"]  # removed: it opens no more
