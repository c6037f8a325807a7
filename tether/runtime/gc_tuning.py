"""Garbage-collector settings for a process whose main work is durable steps.

Each step allocates a few dozen short-lived container objects (records, state copies, futures).
With CPython's default generation-0 threshold (700) and hundreds of executions in flight, the
collector ran every ~30 steps and walked the young survivors each time: 12-17 us of a ~70 us
step (``python -m benchmarks chain``, GC column). A threshold of 50,000 took it to ~1 us, with a
bounded cost: cyclic garbage waits for up to 50,000 allocations before it is freed, and each
young collection walks more objects when it runs (still well under a millisecond here).
``gc.freeze()`` after start-up moves what exists then (modules, the registry, the runtime's
own structures) out of the collector's sight for good, so full collections walk only what
came later.

Both settings are process-wide: an application embedding a ``Runtime`` shares them. They are
applied when the runtime starts, unless ``Runtime(gc_threshold=None)``, and the previous
threshold is put back when it stops (frozen objects are returned to the collector then).
An application that manages the collector itself should pass ``gc_threshold=None``.

Example::

    tuning = GcTuning.apply(50_000)   # after start-up
    ...
    tuning.restore()                  # at shutdown
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

#: Generation-0 threshold while a runtime runs (measured: see the module docstring).
DEFAULT_GC_THRESHOLD = 50_000


@dataclass(frozen=True, slots=True)
class GcTuning:
    """What :meth:`apply` changed, so that :meth:`restore` can put it back."""

    previous: tuple[int, int, int] | None

    @classmethod
    def apply(cls, threshold: int) -> GcTuning:
        """Raise generation 0's threshold to ``threshold`` and freeze what exists now.

        A threshold already at least as high (an application's own, or another runtime's in
        the same process) is left alone, and so is its restoring.
        """
        if threshold < 1:
            raise ValueError("gc_threshold must be >= 1 (or None to leave the collector alone)")
        current = gc.get_threshold()
        if current[0] == 0 or current[0] >= threshold:
            return cls(None)
        # No collection first: it costs a full walk of the heap (a pause of tens to hundreds
        # of milliseconds in a big process, paid by every start); garbage frozen with the
        # rest is returned to the collector by restore().
        gc.freeze()
        # Older generations keep their ratio to the young one: a full collection walks every
        # live execution's objects, so it should stay rare.
        gc.set_threshold(threshold, max(current[1], 50), max(current[2], 100))
        return cls(current)

    def restore(self) -> None:
        if self.previous is not None:
            gc.set_threshold(*self.previous)
            gc.unfreeze()
