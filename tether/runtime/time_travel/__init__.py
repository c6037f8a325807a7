"""Time travel: the state at every record of a journal, and forks that start a new
execution from the state at one of them.

Example::

    steps = await rt.replay_states(run.id)          # one ReplayStep per record
    print(steps[3].seq, steps[3].record.type, state_view(steps[3].state))
    fork = await rt.fork(run.id, at_seq=4)          # a new run, from the state at record 4
    print(await fork.result())
"""

from tether.runtime.time_travel.fork import ForkRefused, ForkResult, RecordNotFound
from tether.runtime.time_travel.states import ReplayStep, state_diff, state_view

__all__ = [
    "ForkRefused",
    "ForkResult",
    "RecordNotFound",
    "ReplayStep",
    "state_diff",
    "state_view",
]
