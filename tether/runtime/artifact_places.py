"""Where a journal record or a snapshot may hold a large value, for the artifact store (I9).

Only places typed ``Any`` (a step's output, an event's payload, the values of the input, the
state and an approval's patch, a code-first call's value): a row read as it is stored then
decodes with an extension object where it takes anything, never where it wants a string or a
struct (``tests/runtime/test_artifacts_runtime.py`` checks each place against the types).

Example::

    store = SpillingStore(store, 8192, clock, SPILL_PLACES)
"""

from __future__ import annotations

from typing import Final

from tether.persistence.artifacts.spill import SpillPlaces
from tether.runtime.snapshots import SNAPSHOT_FORMAT

#: In the records (the union of their fields: a name is the same type wherever it appears).
RECORD_PLACES: Final = (
    ("output",),  # node_completed
    ("payload",),  # event_received, wait_completed
    ("result",),  # execution_completed
    ("input", "*"),  # execution_started, node_scheduled, segment_started
    ("state_patch", "*"),  # approval_received
    ("data", "*"),  # segment_started, and below: the state it carries on
    ("inbox", "*", "*"),
    ("nodes", "*", "input", "*"),
)

#: In the state a snapshot holds (ExecutionState); ``calls``' results are arrays whose
#: second item is the value.
STATE_PLACES: Final = (
    ("input", "*"),
    ("data", "*"),
    ("result",),
    ("inbox", "*", "*"),
    ("nodes", "*", "input", "*"),
    ("calls", "*", "*", "1"),
)

SPILL_PLACES: Final = SpillPlaces(RECORD_PLACES, STATE_PLACES, len(SNAPSHOT_FORMAT))
