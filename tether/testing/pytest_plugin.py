"""Tether's pytest plugin: fixtures and markers for testing your own workflows and agents.

Installed with Tether (the ``pytest11`` entry point), so a test module needs no conftest:

Example::

    import pytest
    from tools import charge

    @pytest.mark.tether(tools=[charge], workflows=["payment.yaml"])
    @pytest.mark.tether_crash_points       # once uncut, then once per journal position, crashed
    async def test_payment(tether_runtime, virtual_clock):
        run = await tether_runtime.start("payment", {"amount": 50})
        assert (await run.result())["charged"]

Fixtures: ``tether_runtime`` (a :class:`RuntimeUnderTest` on a fresh SQLite file under
``tmp_path``), ``tether_runtime_options`` (override it to configure many tests),
``virtual_clock``, ``fake_model`` (the fake provider on loopback) and ``tether_dev`` (a real
``tether dev`` engine in a subprocess). An ``async def`` test that asks for one of them or
carries a ``tether`` marker runs under anyio's pytest plugin without being marked ``anyio``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tether.testing.clock import VirtualClock
from tether.testing.crash_checks import runtime_problems
from tether.testing.crash_points import run_crash_points
from tether.testing.dev_engine import DevEngine, start_dev_engine
from tether.testing.model_player import ModelPlayer
from tether.testing.options import TetherOptions
from tether.testing.runtime_under_test import RuntimeUnderTest

#: Fixtures whose presence makes an async test run under anyio.
TETHER_FIXTURES = frozenset({"tether_runtime", "virtual_clock", "fake_model", "tether_dev"})
TETHER_MARKERS = frozenset({"tether", "tether_crash_points"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tether(tools=[...], workflows=[...], storage='sqlite'|'memory', durability=..., "
        "call_timeout=...): what tether_runtime is built from",
    )
    config.addinivalue_line(
        "markers",
        "tether_crash_points: run the test once uncut, then once per journal position with "
        "the runtime crashed there and recovered; the test and the plugin's checks must hold "
        "at every position",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, Any]:
    # Before anyio's own hook sees the function: it runs marked coroutine tests.
    if collector.istestfunction(obj, name) and _wants_anyio(collector, obj):
        pytest.mark.anyio(obj)
    return (yield)


def _wants_anyio(collector: pytest.Module | pytest.Class, obj: object) -> bool:
    if not inspect.iscoroutinefunction(obj):
        return False
    params = set(inspect.signature(obj).parameters)
    own = {m.name for m in getattr(obj, "pytestmark", ())}
    inherited = any(collector.get_closest_marker(m) for m in TETHER_MARKERS)
    return bool(params & TETHER_FIXTURES or own & TETHER_MARKERS or inherited)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    if pyfuncitem.get_closest_marker("tether_crash_points") is None:
        return (yield)
    original = pyfuncitem.obj
    if "tether_runtime" not in pyfuncitem.funcargs:
        raise pytest.UsageError(
            f"{pyfuncitem.nodeid}: a tether_crash_points test talks to the runtime through "
            "the tether_runtime fixture; add it to the test's arguments"
        )
    pyfuncitem.obj = _crash_points_of(original)
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original


def _crash_points_of(test: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(test)
    async def every_position(**kwargs: Any) -> None:
        rt: RuntimeUnderTest = kwargs["tether_runtime"]
        rt.checked_by_crash_points = True  # the loop checks each position itself
        await run_crash_points(lambda: test(**kwargs), rt)

    return every_position


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def tether_runtime_options(request: pytest.FixtureRequest) -> TetherOptions:
    """The options ``tether_runtime`` is built from: the ``tether`` markers on the test, its
    class and its module (nearest wins). Override this fixture to set them in a conftest."""
    options = TetherOptions()
    for marker in reversed(list(request.node.iter_markers("tether"))):
        options = options.with_marker(marker.kwargs)
    return options


@pytest.fixture
async def tether_runtime(
    request: pytest.FixtureRequest, tether_runtime_options: TetherOptions, tmp_path: Path
) -> AsyncIterator[RuntimeUnderTest]:
    """An embedded runtime on a fresh SQLite file (or memory), with the test's tools and
    workflows; on the ``virtual_clock`` and the ``fake_model`` when the test uses them. At
    the end, the plugin's checks run: replay equals the live state, nothing ran before it was
    journaled."""
    options = tether_runtime_options
    clock = request.getfixturevalue("virtual_clock") if _uses(request, "virtual_clock") else None
    if _uses(request, "fake_model") and not options.model_env:
        player: ModelPlayer = request.getfixturevalue("fake_model")
        options = replace(options, model_env=player.env())
    async with RuntimeUnderTest(options, tmp_path, clock) as rt:
        await rt.begin()
        yield rt
        if not rt.checked_by_crash_points and rt.lives:
            problems = await runtime_problems(rt)
            assert not problems, "tether_runtime's checks:\n  " + "\n  ".join(problems)


def _uses(request: pytest.FixtureRequest, name: str) -> bool:
    return name in request.fixturenames


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """Time that moves only when the test says: ``virtual_clock.advance(3600)``."""
    return VirtualClock()


@pytest.fixture
def fake_model() -> Iterator[ModelPlayer]:
    """The fake model provider on 127.0.0.1 (OpenAI, Anthropic, Gemini wire formats):
    ``fake_model.play([...])`` scripts its answers; ``tether_runtime`` points its model
    and agent nodes at it."""
    with ModelPlayer() as player:
        yield player


@pytest.fixture
def tether_dev(tmp_path: Path) -> Iterator[DevEngine]:
    """A real ``tether dev`` engine in a subprocess on loopback, its journal under
    ``tmp_path``: ``tether_dev.url`` for API-level tests; killed at the end."""
    with start_dev_engine(tmp_path) as engine:
        yield engine
