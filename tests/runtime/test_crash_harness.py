"""The crash harness itself: a dead cut store lets no write of any kind through, and a cut on
SQLite leaves the file as a killed process would, for a fresh runtime to recover (I4, I6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tools import add_one

from tether.ir import compile_yaml_text
from tether.persistence import MemoryStore
from tether.persistence.contract import Store, Turn
from tether.testing import CutStore, SimulatedCrash, crash_and_recover, journal_length
from tether.testing.crash import STORE_WRITES

pytestmark = pytest.mark.anyio

#: The Store methods that change nothing stored (open and close belong to the harness).
STORE_READS = {
    "open",
    "close",
    "read",
    "latest_snapshot",
    "get_execution",
    "list_executions",
    "page_executions",
    "count_executions",
    "unfinished_executions",
    "passive_wakes",
    "load_executions",
    "get_workflow",
    "list_workflows",
    "expired_leases",
    "open_work_items",
    "list_work_items",
    "page_work_items",
    "count_work_items",
    "get_work_item",
    "get_schedule",
    "list_schedules",
    "views_behind",
}

CHAIN = """
workflow: {id: chain3, version: "1", state_schema: {n: integer}}
nodes:
  a: {type: tool, tool: add_one, output_key: n, next: b}
  b: {type: tool, tool: add_one, output_key: n, next: c}
  c: {type: tool, tool: add_one, output_key: n}
"""


def test_every_store_method_is_known_as_a_read_or_a_write() -> None:
    # A method added to the contract must be sorted here, or a cut store would let it through.
    methods = {n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")}
    assert methods == STORE_READS | STORE_WRITES
    assert not STORE_READS & STORE_WRITES


@pytest.mark.parametrize("method", sorted(STORE_WRITES))
async def test_a_dead_cut_store_refuses_every_write(method: str) -> None:
    class Untouchable(MemoryStore):
        def __getattribute__(self, name: str) -> Any:
            if name != method:
                return super().__getattribute__(name)

            async def reached(*args: Any, **kwargs: Any) -> None:
                raise AssertionError(f"{name} reached the store after the crash")

            return reached

    cut = CutStore(Untouchable(), 0)
    cut.kill()
    args = (Turn("exec_1", 1, ()),) if method == "append" else ()  # the others: any args
    with pytest.raises(SimulatedCrash):
        await getattr(cut.as_store(), method)(*args)


async def test_a_cut_on_sqlite_is_recovered_by_a_fresh_runtime_on_the_same_file(
    tmp_path: Path,
) -> None:
    wf = compile_yaml_text(CHAIN, "chain3.yaml")
    total = await journal_length(wf, {"n": 0}, tools=[add_one], url=f"sqlite:///{tmp_path}/0.db")
    for cut in range(total + 1):
        # The first life's store is abandoned (its writer lock dropped without a clean close)
        # and a second store opens the same file: a lock left behind would fail that open.
        url = f"sqlite:///{tmp_path}/cut{cut}.db"
        report = await crash_and_recover(wf, {"n": 0}, tools=[add_one], cut=cut, url=url)
        assert report.crashed == (cut < total)
        assert report.state.data == {"n": 3}
        assert report.reran_settled == []
        assert report.unjournaled == []
