"""Time travel over HTTP: the state at a record and its diff, every record's diff, forks.

``GET /executions/{id}/states?at=SEQ`` is the state once record ``SEQ`` is folded (the
fold of records 1..SEQ), the record itself as ``/events`` shows it, and the JSON Patch diff
from the state at ``SEQ-1``. ``GET /executions/{id}/states`` lists every record with its
diff (``full=true`` adds each state). ``POST /executions/{id}/fork {"at_seq": N}`` starts a
new execution from the state at record N (see :mod:`tether.runtime.time_travel.fork`);
``GET /executions/{id}`` then shows ``forked_from`` on it. An unknown execution or record is
a 404, a record that ends the run a 422; nothing is written for either.

Example::

    POST /executions/exec_01.../fork {"at_seq": 4}
    -> 201 {"execution_id": "exec_02...", "forked_from": "exec_01...", "at_seq": 4,
            "status": "running", "runs_again": ["charge"], "finished_in_origin": ["charge"]}
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from tether.runtime.assembly import check_client_id
from tether.runtime.records import JournalEntry
from tether.runtime.runtime import Runtime
from tether.runtime.time_travel import ReplayStep, state_diff, state_view
from tether.server.views import event_view


class ForkBody(msgspec.Struct, frozen=True):
    at_seq: int
    #: The new execution's id (default: a new ``exec_...``); a retry with it starts one fork.
    execution_id: str | None = None


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _record(entry: JournalEntry) -> dict[str, Any]:
    return event_view(entry)


def _step(step: ReplayStep, before: ReplayStep | None, *, full: bool) -> dict[str, Any]:
    after_view = state_view(step.state)
    before_view = state_view(before.state) if before is not None else {}
    out: dict[str, Any] = {
        "seq": step.seq,
        "type": step.entry.type,  # the journal's name (``record`` is as /events shows it)
        "record": _record(step.entry),
        "diff": state_diff(before_view, after_view),
    }
    if full:
        out["state"] = after_view
    return out


@get("/executions/{execution_id:str}/states")
async def states(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    at: FromQuery[int | None] = None,
    full: FromQuery[bool] = False,
) -> dict[str, Any]:
    rt = _rt(request)
    if at is not None:
        step, before = await rt.state_at(execution_id, at)
        last = (await rt.get_execution(execution_id)).last_seq
        view = _step(step, before, full=True)
        return {"execution_id": execution_id, "last_seq": last, **view}
    steps = await rt.replay_states(execution_id)
    return {
        "execution_id": execution_id,
        "states": [_step(s, steps[i - 1] if i else None, full=full) for i, s in enumerate(steps)],
    }


@post("/executions/{execution_id:str}/fork", status_code=201)
async def fork(
    request: Request[Any, Any, Any], execution_id: FromPath[str], data: JSONBody[ForkBody]
) -> dict[str, Any]:
    if data.execution_id is not None:
        check_client_id(data.execution_id)  # 422 before anything is read or written
    result = await _rt(request).fork(execution_id, at_seq=data.at_seq, fork_id=data.execution_id)
    return msgspec.to_builtins(result)  # type: ignore[no-any-return]


async def fork_link(rt: Runtime, execution_id: str) -> dict[str, Any] | None:
    """``{"execution_id", "at_seq"}`` of the run this one was forked from, or None."""
    origin = await rt.fork_origin(execution_id)
    return None if origin is None else {"execution_id": origin[0], "at_seq": origin[1]}


ROUTES = [states, fork]
