"""Public testing helpers: a virtual clock, replay checks, a crash harness, the runtime the
pytest plugin's ``tether_runtime`` fixture gives (see ``tether.testing.pytest_plugin``).

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
from tether.testing.options import TetherOptions
from tether.testing.replay import ReplayMismatch, check_journal, check_replay, state_diff
from tether.testing.runtime_under_test import CrashRecord, RuntimeUnderTest
from tether.testing.time_driver import finish

__all__ = [
    "CrashRecord",
    "CrashReport",
    "CutStore",
    "ReplayMismatch",
    "RuntimeUnderTest",
    "SimulatedCrash",
    "TetherOptions",
    "VirtualClock",
    "check_journal",
    "check_replay",
    "crash_and_recover",
    "finish",
    "journal_length",
    "state_diff",
]
