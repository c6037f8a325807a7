"""Supervision strategies (what happens when an actor fails) and the restart-intensity window.

Example::

    await system.spawn(Worker, strategy=RestartStrategy(max_restarts=5, within_secs=10.0))
    await system.spawn(Probe, strategy=StopStrategy())        # a failure just stops it
    await system.spawn(Critical, strategy=EscalateStrategy()) # a failure goes to the parent
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartStrategy:
    """Restart a failed actor with a fresh instance, up to an intensity limit (the default).

    At most ``max_restarts`` restarts within ``within_secs`` (monotonic clock); the next failure
    inside that window escalates instead. Before the n-th restart of the window (n from 0) the
    actor sleeps ``min(backoff_max_secs, backoff_initial_secs * backoff_multiplier ** n)`` on the
    system's clock.
    """

    max_restarts: int = 3
    within_secs: float = 60.0
    backoff_initial_secs: float = 0.01
    backoff_max_secs: float = 1.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        if self.within_secs <= 0:
            raise ValueError("within_secs must be > 0")
        if self.backoff_initial_secs < 0 or self.backoff_max_secs < 0:
            raise ValueError("backoff durations must be >= 0")
        if self.backoff_multiplier < 1:
            raise ValueError("backoff_multiplier must be >= 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (0-based) of the current window."""
        # Cap the exponent first: a float power overflows long before the cap matters.
        delay = self.backoff_initial_secs * self.backoff_multiplier ** min(attempt, 64)
        return min(self.backoff_max_secs, delay)


@dataclass(frozen=True, slots=True)
class StopStrategy:
    """On failure, stop the actor (pending asks get ActorStopped) and tell nobody."""


@dataclass(frozen=True, slots=True)
class EscalateStrategy:
    """On failure, stop the actor and escalate to its parent (or the system) at once."""


SupervisionStrategy = RestartStrategy | StopStrategy | EscalateStrategy


class RestartWindow:
    """The restarts of one actor inside the strategy's sliding window."""

    __slots__ = ("_strategy", "_times")

    def __init__(self, strategy: RestartStrategy) -> None:
        self._strategy = strategy
        self._times: deque[float] = deque()

    def next_backoff(self, now: float) -> float | None:
        """Record a restart at ``now`` and return its backoff, or None if the limit is spent."""
        horizon = now - self._strategy.within_secs
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        if len(self._times) >= self._strategy.max_restarts:
            return None
        attempt = len(self._times)
        self._times.append(now)
        return self._strategy.backoff(attempt)
