"""The runtime's collector settings: applied while it runs, put back after, optional."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tether import Runtime
from tether.runtime.gc_tuning import DEFAULT_GC_THRESHOLD, GcTuning

pytestmark = pytest.mark.anyio


@pytest.fixture
def default_collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


async def test_a_runtime_raises_the_threshold_while_it_runs(
    db_url: str, default_collector: None
) -> None:
    async with Runtime(db_url):
        assert gc.get_threshold()[0] == DEFAULT_GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


async def test_none_leaves_the_collector_alone(db_url: str, default_collector: None) -> None:
    async with Runtime(db_url, gc_threshold=None):
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() == 0


def test_a_higher_threshold_already_set_is_kept(default_collector: None) -> None:
    gc.set_threshold(100_000, 10, 10)
    tuning = GcTuning.apply(50_000)
    assert gc.get_threshold() == (100_000, 10, 10)
    tuning.restore()
    assert gc.get_threshold() == (100_000, 10, 10)


def test_a_nested_runtime_does_not_undo_the_first(default_collector: None) -> None:
    outer = GcTuning.apply(50_000)
    inner = GcTuning.apply(50_000)
    inner.restore()
    assert gc.get_threshold()[0] == 50_000
    outer.restore()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="gc_threshold"):
        Runtime("sqlite:///x.db", gc_threshold=0)
