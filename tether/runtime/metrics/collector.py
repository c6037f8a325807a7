"""A prometheus_client Collector that reads one runtime's counts when scraped.

Nothing here runs on a step's path: ``collect`` reads the :class:`TurnTally`, the runtime's
:class:`~tether.runtime.counters.RuntimeCounters`, the journal writer's stats, the worker
ledger, and the executions-by-status counts the last :meth:`RuntimeMetrics.refresh` read.

Example::

    registry = CollectorRegistry(auto_describe=True)
    registry.register(RuntimeCollector(services, tally, statuses))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tether.runtime.metrics.tally import LATENCY_BUCKETS, TurnTally
from tether.runtime.services import Services


class RuntimeCollector(Collector):
    """Every ``tether_*`` metric of one runtime (see the README's Metrics section)."""

    def __init__(self, services: Services, tally: TurnTally, statuses: Mapping[str, int]) -> None:
        self._s = services
        self._tally = tally
        self._statuses = statuses  # refreshed in place before each scrape

    def collect(self) -> Iterator[Metric]:
        yield from self._steps()
        yield from self._executions()
        yield from self._leases()
        yield from self._journal()
        yield from self._workers()

    def _steps(self) -> Iterator[Metric]:
        t = self._tally
        started = CounterMetricFamily(
            "tether_steps_scheduled", "Node attempts handed out (NodeScheduled records)."
        )
        started.add_metric([], t.steps_scheduled)
        finished = CounterMetricFamily(
            "tether_steps_finished",
            "Node attempts that ended, by outcome (cancelled: closed by the run's end or "
            "a superseded branch).",
            labels=["outcome"],
        )
        for outcome, n in t.steps_finished.items():
            finished.add_metric([outcome], n)
        parks = CounterMetricFamily(
            "tether_parks", "Steps parked by a rate limit (a 429), no attempt spent."
        )
        parks.add_metric([], t.steps_finished["parked"])
        yield started
        yield finished
        yield parks
        yield _latency(t)

    def _executions(self) -> Iterator[Metric]:
        t = self._tally
        started = CounterMetricFamily("tether_executions_started", "Executions started.")
        started.add_metric([], t.executions_started)
        ended = CounterMetricFamily(
            "tether_executions_ended", "Executions (segments) that ended, by status.",
            labels=["status"],
        )  # fmt: skip
        for status, n in t.executions_ended.items():
            ended.add_metric([status], n)
        current = GaugeMetricFamily(
            "tether_executions",
            "Executions in the index by status, as of this scrape (counted up to a cap).",
            labels=["status"],
        )
        for status, n in self._statuses.items():
            current.add_metric([status], n)
        yield started
        yield ended
        yield current

    def _leases(self) -> Iterator[Metric]:
        counters = self._s.counters
        granted = CounterMetricFamily(
            "tether_leases_granted",
            "Work items leased to a worker: created leased, or granted from the table.",
        )
        stats = _writer_stats(self._s)
        from_table = int(getattr(stats, "leases", 0)) if stats is not None else 0
        granted.add_metric([], self._tally.leased_at_creation + from_table)
        reclaimed = CounterMetricFamily(
            "tether_leases_reclaimed", "Leases taken back: no heartbeat, or the worker lost."
        )
        reclaimed.add_metric([], counters.leases_reclaimed)
        refused = CounterMetricFamily(
            "tether_lease_reports_refused",
            "Worker reports refused: no live lease, a stale fence, another owner, reclaimed.",
        )
        refused.add_metric([], counters.reports_refused)
        yield granted
        yield reclaimed
        yield refused

    def _journal(self) -> Iterator[Metric]:
        stats = _writer_stats(self._s)
        if stats is None:  # a store without a group-committing writer (memory)
            return
        # What each store's writer counts (a store without one of them reports it as 0).
        commits, rows = int(getattr(stats, "commits", 0)), int(getattr(stats, "rows", 0))
        for name, doc, value in (
            ("tether_journal_commits", "Journal transactions committed.", commits),
            ("tether_journal_turns", "Execution turns committed.", int(getattr(stats, "turns", 0))),
            ("tether_journal_rows", "Journal records committed.", rows),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], value)
            yield family
        per_commit = GaugeMetricFamily(
            "tether_journal_rows_per_commit", "Journal records per commit, since start."
        )
        per_commit.add_metric([], rows / commits if commits else 0.0)
        yield per_commit

    def _workers(self) -> Iterator[Metric]:
        workers = list(self._s.ledger.workers.values())
        count = GaugeMetricFamily("tether_workers", "Workers the scheduler knows now.")
        count.add_metric([], len(workers))
        free = GaugeMetricFamily(
            "tether_worker_free_credit", "Free credit (slots) of every worker, summed."
        )
        free.add_metric([], sum(max(w.credit.free, 0) for w in workers))
        yield count
        yield free


def _latency(t: TurnTally) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*LATENCY_BUCKETS, float("inf")), t.latency_counts, strict=True):
        running += n
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
    family = HistogramMetricFamily(
        "tether_step_duration_seconds",
        "How long completed and failed attempts ran (the outcome's duration).",
        labels=[],
    )
    family.add_metric([], buckets, sum_value=t.latency_sum_ms / 1000)
    return family


def _writer_stats(services: Services) -> Any:
    """The SQLite or Postgres writer's ``WriterStats`` (a property of those stores), or None
    for a store without one (memory)."""
    stats = getattr(services.store, "stats", None)
    return stats if hasattr(stats, "commits") else None
