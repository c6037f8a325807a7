"""A workflow written with the ``jamjet`` SDK's decorators, served by ``jamjet worker``.

Its steps are plain python_fn nodes: the engine has no function for them, so their items wait
on the ``general`` queue for an HTTP worker, which reads the state, runs the step and sends
back what changed (``state_patch``).
"""

from __future__ import annotations

from jamjet.workflow import Workflow
from pydantic import BaseModel

flow = Workflow("jj_flow", version="1")


@flow.state
class State(BaseModel):
    n: int = 0
    trail: list[str] = []


@flow.step
async def double(state: State) -> State:
    return state.model_copy(update={"n": state.n * 2, "trail": [*state.trail, "double"]})


@flow.step
async def add_one(state: State) -> State:
    return state.model_copy(update={"n": state.n + 1, "trail": [*state.trail, "add_one"]})
