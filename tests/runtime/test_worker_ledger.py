"""The worker ledger: credit taken at item creation, round robin, queues, credit given back."""

from __future__ import annotations

from typing import Any, cast

from tether.runtime.ledger import Credit, WorkerEntry, WorkerLedger
from tether.runtime.scheduler_messages import WorkerLink


class QuietLink:
    """Only what the ledger asks of a link: is the worker quiet (missed its heartbeats)?"""

    def __init__(self) -> None:
        self.is_quiet = False

    def quiet(self) -> bool:
        return self.is_quiet


def entry(owner: str, credit: int, queues: set[str] | None = None, local: bool = False) -> Any:
    link = cast(WorkerLink, QuietLink())
    return WorkerEntry(owner, link, None if queues is None else frozenset(queues),
                       Credit(credit), local)  # fmt: skip


def test_take_skips_a_quiet_worker_until_it_speaks_again() -> None:
    ledger = WorkerLedger()
    a, b = entry("a", 2), entry("b", 2)
    ledger.join(a)
    ledger.join(b)
    a.link.is_quiet = True
    assert [ledger.take("q").owner for _ in range(2)] == ["b", "b"]
    assert ledger.take("q") is None  # a keeps its credit but is not given work
    a.link.is_quiet = False
    assert ledger.take("q").owner == "a"
    only = WorkerLedger()
    c = entry("c", 1)
    only.join(c)
    c.link.is_quiet = True
    assert only.take("q") is None  # also when it is the only worker


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


def test_withdrawn_credit_is_kept_back_from_a_grant_in_flight() -> None:
    """A polling worker's claim ends without a grant while the scheduler's grant holds its
    credit: what that grant leaves unused does not come back; what it used stays used."""
    w = entry("http/w", 0)
    w.withdraw(1)  # nothing free and nothing in flight: nothing to take back
    assert (w.credit.free, w.owed) == (0, 0)
    w.credit.give(1)
    w.withdraw(1)  # free: taken back at once
    assert (w.credit.free, w.owed) == (0, 0)
    # The scheduler moves the credit into a grant (as _pump does), then the claim gives up.
    w.credit.give(1)
    w.credit.free -= 1
    w.granting.add("q")
    w.withdraw(1)
    assert w.owed == 1
    w.grant_done("q", unused=1)  # the grant found nothing: the credit stays withdrawn
    assert (w.credit.free, w.owed) == (0, 0)
    # The same, but the grant used the credit: nothing is owed later (a new claim's credit
    # is not swallowed).
    w.credit.give(1)
    w.credit.free -= 1
    w.granting.add("q")
    w.withdraw(1)
    w.grant_done("q", unused=0)
    assert (w.credit.free, w.owed) == (0, 0)
    w.credit.give(1)
    assert w.credit.free == 1
