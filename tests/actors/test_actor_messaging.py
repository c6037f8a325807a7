"""Messaging: tell/ask order and answers, backpressure, timeouts, names, stopped actors."""

from __future__ import annotations

import anyio
import pytest

from tether.actors import (
    Actor,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    MailboxFull,
)

pytestmark = pytest.mark.anyio


class Recorder(Actor):
    """Records every message; 'get' answers the record, 'fail' raises, a gate blocks."""

    def __init__(self, log: list[object], gate: anyio.Event | None = None) -> None:
        self.log = log
        self.gate = gate
        self.entered = anyio.Event()

    async def on_receive(self, message: object) -> object:
        if message == "gate":
            self.entered.set()
            assert self.gate is not None
            await self.gate.wait()
            return "opened"
        if message == "get":
            return list(self.log)
        if message == "fail":
            raise KeyError("bad message")
        if message == "timeout":
            raise TimeoutError("handler's own timeout")
        self.log.append(message)
        return ("ok", message)


async def test_tell_and_ask_keep_order_and_ask_returns_the_value() -> None:
    log: list[object] = []
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: Recorder(log), name="rec")
        for i in range(5):
            await ref.tell(i)
        assert await ref.ask(5) == ("ok", 5)
        ref.tell_nowait(6)
        assert await ref.ask("get") == [0, 1, 2, 3, 4, 5, 6]


async def test_ask_gets_the_handlers_exception_and_the_actor_carries_on() -> None:
    log: list[object] = []
    instances: list[Recorder] = []

    def make() -> Recorder:
        instances.append(Recorder(log))
        return instances[-1]

    async with ActorSystem() as system:
        ref = await system.spawn(make, name="rec")
        await ref.tell("a")
        with pytest.raises(KeyError, match="bad message"):
            await ref.ask("fail")
        with pytest.raises(TimeoutError, match="handler's own") as caught:
            await ref.ask("timeout")
        assert not isinstance(caught.value, AskTimeout)
        await ref.tell("b")
        assert await ref.ask("get") == ["a", "b"]
        assert len(instances) == 1  # no restart
        assert instances[0].context.restart_count == 0


async def test_ask_raises_the_very_exception_object() -> None:
    error = ValueError("this one")

    class Raiser(Actor):
        async def on_receive(self, message: object) -> object:
            raise error

    async with ActorSystem() as system:
        ref = await system.spawn(Raiser)
        with pytest.raises(ValueError) as caught:
            await ref.ask("x")
        assert caught.value is error


async def test_ask_timeout_raises_ask_timeout() -> None:
    gate = anyio.Event()
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: Recorder([], gate), name="slow")
        with pytest.raises(AskTimeout, match="'slow'") as caught:
            await ref.ask("gate", timeout=0.05)
        assert isinstance(caught.value, TimeoutError)
        gate.set()
        assert await ref.ask("get") == []  # still serving after the abandoned ask


async def test_ask_timeout_covers_waiting_for_mailbox_space() -> None:
    gate = anyio.Event()
    instance = Recorder([], gate)
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: instance, name="full", mailbox_size=1)
        await ref.tell("gate")
        await instance.entered.wait()
        ref.tell_nowait("x")  # fills the mailbox
        with pytest.raises(AskTimeout):
            await ref.ask("y", timeout=0.05)
        gate.set()


async def test_bounded_mailbox_backpressure() -> None:
    gate = anyio.Event()
    log: list[object] = []
    instance = Recorder(log, gate)
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: instance, name="bp", mailbox_size=2)
        ref.tell_nowait("gate")
        await instance.entered.wait()  # the gate message left the mailbox; it is empty
        ref.tell_nowait(1)
        ref.tell_nowait(2)
        with pytest.raises(MailboxFull, match="'bp'"):
            ref.tell_nowait(3)
        sent = anyio.Event()

        async def send_three() -> None:
            await ref.tell(3)
            sent.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_three)
            await anyio.wait_all_tasks_blocked()
            assert not sent.is_set()  # waiting for space
            gate.set()
            await sent.wait()
        assert await ref.ask("get") == [1, 2, 3]


async def test_waiting_tell_gets_actor_stopped_when_the_actor_stops() -> None:
    gate = anyio.Event()
    instance = Recorder([], gate)
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: instance, name="bp", mailbox_size=1)
        ref.tell_nowait("gate")
        await instance.entered.wait()
        ref.tell_nowait(1)
        outcome: list[BaseException] = []

        async def blocked_tell() -> None:
            try:
                await ref.tell(2)
            except ActorStopped as error:
                outcome.append(error)

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_tell)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(ref.stop, False)
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert len(outcome) == 1


async def test_tell_and_ask_to_a_stopped_actor_raise_actor_stopped() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: Recorder([]), name="gone")
        assert system.get("gone") is ref
        await ref.stop()
        assert not ref.is_alive
        assert system.get("gone") is None
        with pytest.raises(ActorStopped, match="'gone'"):
            await ref.tell(1)
        with pytest.raises(ActorStopped):
            ref.tell_nowait(1)
        with pytest.raises(ActorStopped):
            await ref.ask(1)
        await ref.stop()  # stopping twice is harmless
        again = await system.spawn(lambda: Recorder([]), name="gone")  # the name is free
        assert again is not ref and again.is_alive


async def test_duplicate_names_are_rejected() -> None:
    class Parent(Actor):
        async def on_receive(self, message: object) -> object:
            assert isinstance(message, str)
            return await self.context.spawn(lambda: Recorder([]), name=message)

    async with ActorSystem() as system:
        await system.spawn(lambda: Recorder([]), name="one")
        with pytest.raises(ValueError, match="'one'"):
            await system.spawn(lambda: Recorder([]), name="one")
        parent = await system.spawn(Parent, name="parent")
        with pytest.raises(ValueError, match="'one'"):
            await parent.ask("one")
        child = await parent.ask("two")
        assert system.get("two") is child
        unnamed = [await system.spawn(Parent) for _ in range(3)]
        assert len({ref.name for ref in unnamed}) == 3


async def test_spawn_outside_a_running_system_raises() -> None:
    system = ActorSystem()
    with pytest.raises(RuntimeError, match="not running"):
        await system.spawn(lambda: Recorder([]))
    async with system:
        pass
    with pytest.raises(RuntimeError, match="not running"):
        await system.spawn(lambda: Recorder([]))
