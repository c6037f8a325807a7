"""A second jamjet SDK workflow, served by its own `jamjet worker` on the same queue as
jamjet_flow.py's: each worker is handed the other's steps too."""

from __future__ import annotations

from jamjet.workflow import Workflow
from pydantic import BaseModel

flow = Workflow("jj_flow_b", version="1")


@flow.state
class State(BaseModel):
    n: int = 0
    trail: list[str] = []


@flow.step
async def triple(state: State) -> State:
    return state.model_copy(update={"n": state.n * 3, "trail": [*state.trail, "triple"]})
