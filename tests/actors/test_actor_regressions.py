"""Regressions from review of the kernel."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from tether.actors import Actor, ActorSystem, StopStrategy

pytestmark = pytest.mark.anyio


class CancelledInside(Actor):
    """Awaits a future someone else cancelled: CancelledError without being cancelled."""

    async def on_receive(self, message: object) -> object:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future
        return None


class Bystander(Actor):
    def __init__(self, stopped: anyio.Event) -> None:
        self.stopped = stopped

    async def on_receive(self, message: object) -> object:
        return message

    async def on_stop(self) -> None:
        self.stopped.set()


async def test_a_stray_cancelled_error_is_a_failure_not_a_system_cancel() -> None:
    stopped = anyio.Event()
    async with ActorSystem() as system:
        victim = await system.spawn(CancelledInside, name="victim", strategy=StopStrategy())
        other = await system.spawn(lambda: Bystander(stopped), name="other")
        with pytest.raises(RuntimeError, match="CancelledError without being cancelled"):
            await victim.ask("boom")
        await victim.tell("boom")  # a tell: the strategy stops the victim
        assert await other.ask("still here") == "still here"
    assert stopped.is_set()  # an orderly shutdown reached the bystander


async def test_stopping_many_children_is_not_quadratic() -> None:
    class Parent(Actor):
        async def on_receive(self, message: object) -> object:
            assert isinstance(message, int)
            for i in range(message):
                await self.context.spawn(Actor, name=f"c{i}")
            return len(self.context.children)

    async with ActorSystem() as system:
        parent = await system.spawn(Parent, name="parent")
        assert await parent.ask(2000, timeout=None) == 2000
        await parent.stop()  # 2000 children stopped; list removal made this quadratic


async def test_a_parent_restart_does_not_wedge_on_a_child_asking_it() -> None:
    asked = anyio.Event()

    class Child(Actor):
        async def on_receive(self, message: object) -> object:
            assert self.context.parent is not None
            asked.set()
            return await self.context.parent.ask("config?", timeout=None)

    class Parent(Actor):
        async def on_start(self) -> None:
            self.child = await self.context.spawn(Child, name="child")

        async def on_receive(self, message: object) -> object:
            if message == "go":
                await self.child.tell("work")  # the child now asks us, and waits
                await asyncio.wait_for(asked.wait(), 5)
                raise ValueError("parent fails while its child waits on it")
            return "config"

    async with ActorSystem() as system:
        parent = await system.spawn(Parent, name="parent")
        await parent.tell("go")
        with anyio.fail_after(5):  # the restart stops the child, interrupting its ask
            assert await parent.ask("ping", timeout=None) == "config"
    # leaving the block shut everything down without hanging
