"""Public testing helpers: a virtual clock, replay checks, a crash harness, strategies.

Example::

    from tether.testing import VirtualClock, check_replay, crash_and_recover

    await check_replay(rt, run.id)     # replay equals live state, journal rules hold
"""

from tether.testing.clock import VirtualClock
from tether.testing.crash import (
    CrashReport,
    CutStore,
    SimulatedCrash,
    crash_and_recover,
    journal_length,
)
from tether.testing.replay import ReplayMismatch, check_journal, check_replay, state_diff

__all__ = [
    "CrashReport",
    "CutStore",
    "ReplayMismatch",
    "SimulatedCrash",
    "VirtualClock",
    "check_journal",
    "check_replay",
    "crash_and_recover",
    "journal_length",
    "state_diff",
]
