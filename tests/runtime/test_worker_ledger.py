"""The worker ledger: credit taken at item creation, round robin, queues, credit given back."""

from __future__ import annotations

from typing import Any, cast

from tether.runtime.ledger import Credit, WorkerEntry, WorkerLedger
from tether.runtime.scheduler_messages import WorkerLink


def entry(owner: str, credit: int, queues: set[str] | None = None, local: bool = False) -> Any:
    link = cast(WorkerLink, object())
    return WorkerEntry(owner, link, None if queues is None else frozenset(queues),
                       Credit(credit), local)  # fmt: skip


def test_take_goes_round_robin_over_workers_with_credit() -> None:
    ledger = WorkerLedger()
    a, b = entry("a", 2), entry("b", 3)
    ledger.join(a)
    ledger.join(b)
    owners = [taken.owner for _ in range(5) if (taken := ledger.take("q")) is not None]
    assert owners == ["a", "b", "a", "b", "b"]
    assert ledger.take("q") is None
    assert (a.credit.free, b.credit.free) == (0, 0)


def test_take_respects_queues_and_give_back_only_to_a_current_worker() -> None:
    ledger = WorkerLedger()
    io, cpu = entry("io", 1, {"io"}), entry("cpu", 1, {"cpu"})
    ledger.join(io)
    ledger.join(cpu)
    assert ledger.take("other") is None
    taken = ledger.take("cpu")
    assert taken is cpu and cpu.credit.free == 0
    ledger.give_back(cpu)
    assert cpu.credit.free == 1
    ledger.leave("cpu")
    ledger.give_back(cpu)  # left meanwhile: its credit is gone with it
    assert cpu.credit.free == 1


def test_credit_coming_back_wakes_a_waiting_scheduler_once() -> None:
    credit = Credit(0)
    woken: list[int] = []
    credit.on_free(lambda: woken.append(credit.free))
    credit.give()
    assert woken == []  # nobody waited
    credit.wanted = True
    credit.give(2)
    credit.give()
    assert woken == [3] and credit.free == 4
