"""``WorkerSet`` (``tether worker --engine A --engine B``): the slots split between engines,
an engine named twice refused, one engine that cannot be reached leaves the others served
(the process tests with engines are in tests/server/test_shared_engines_processes.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.fleet.worker_set import WorkerSet, slot_shares


@given(st.integers(1, 512), st.integers(1, 16))
def test_slot_shares_split_the_concurrency_evenly(concurrency: int, engines: int) -> None:
    shares = slot_shares(concurrency, engines)
    assert len(shares) == engines and min(shares) >= 1
    assert max(shares) - min(shares) <= 1
    assert sum(shares) == max(concurrency, engines)  # one slot each at least


def test_an_engine_named_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="named twice"):
        WorkerSet(["tcp://127.0.0.1:1", "tcp://127.0.0.1:1"], tools=[])


def test_each_engine_gets_its_own_worker_and_share() -> None:
    ws = WorkerSet(["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"], tools=[], concurrency=5)
    assert [(w.endpoint, w.concurrency) for w in ws.workers] == [
        ("tcp://127.0.0.1:1", 3),
        ("tcp://127.0.0.1:2", 2),
    ]
