"""Routes of the cron schedules: create (or redefine), list, pause, resume, delete.

What ``rt.schedule(...)`` and ``rt.schedules`` do embedded, over HTTP, under the same bearer
token as every other route. A schedule names a registered workflow (``workflow_version``
left out: the latest); each fire starts one execution ``sched_<schedule_id>_<fire ms>``, so a
schedule id here is what an execution id may hold (the fires are read back by URL). Refusals
name the field (422), an unknown workflow or schedule is a 404, an engine started with
``TETHER_EMBED_CRON=false`` answers 409.

Example::

    POST /schedules {"schedule_id": "daily-report", "cron": "0 9 * * *",
                     "workflow_id": "report", "timezone": "Europe/Paris"}
    -> 201 {"schedule_id": "daily-report", "next_fire_at": "2026-12-07T08:00:00.000+00:00", ...}
    GET /schedules -> {"schedules": [...]}
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
from litestar import Request, delete, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody

from tether.errors import InvalidInput
from tether.persistence.contract import ScheduleRow
from tether.runtime.runtime import Runtime
from tether.runtime.schedule_api import Schedules
from tether.runtime.schedules import check_missed, decode_input, parse_cron
from tether.server.views import iso

#: A schedule id over HTTP: ``sched_<id>_<13-digit ms>`` must still be an execution id a
#: client can name (128 characters of the same alphabet).
SCHEDULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
SCHEDULE_ID_RULE: Final = "1-100 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit"


class CreateScheduleBody(msgspec.Struct, frozen=True):
    schedule_id: str
    cron: str
    workflow_id: str
    workflow_version: str | None = None
    input: dict[str, Any] = {}
    timezone: str = "UTC"
    #: ``skip`` the fires that came due while no engine ran, or ``run_once`` (the latest).
    missed: str = "skip"


def schedule_view(row: ScheduleRow) -> dict[str, Any]:
    """A schedule as the API and ``tether schedules`` show it."""
    return {
        "schedule_id": row.schedule_id,
        "cron": row.cron,
        "timezone": row.timezone,
        "workflow_id": row.workflow_id,
        "workflow_version": row.workflow_version,
        "input": decode_input(row),
        "missed": row.missed,
        "paused": row.paused,
        "next_fire_at": iso(row.next_fire_ms),
        "created_at": iso(row.created_at_ms),
        "updated_at": iso(row.updated_at_ms),
        "last_error": row.last_error,
    }


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _schedules(rt: Runtime) -> Schedules:
    try:
        return rt.schedules
    except RuntimeError:  # the engine runs no CronActor: a schedule would never fire
        raise HTTPException(
            status_code=409,
            detail="this engine runs no cron schedules (TETHER_EMBED_CRON=false): create it "
            "on an engine that does",
        ) from None


@post("/schedules", status_code=201)
async def create_schedule(
    request: Request[Any, Any, Any], data: JSONBody[CreateScheduleBody]
) -> dict[str, Any]:
    rt = _rt(request)
    _schedules(rt)
    if not SCHEDULE_ID.fullmatch(data.schedule_id):
        raise InvalidInput(f"schedule_id {data.schedule_id[:64]!r}: use {SCHEDULE_ID_RULE}")
    parse_cron(data.cron, data.timezone)  # the fields in order, before the workflow's 404
    check_missed(data.missed)
    ref = data.workflow_id
    if data.workflow_version is not None:
        ref = f"{ref}@{data.workflow_version}"
    row = await rt.schedule(
        data.schedule_id, cron=data.cron, workflow=ref, input=data.input,
        timezone=data.timezone, missed=data.missed,
    )  # fmt: skip
    return schedule_view(row)


@get("/schedules")
async def list_schedules(request: Request[Any, Any, Any]) -> dict[str, Any]:
    rows = await _schedules(_rt(request)).list()
    return {"schedules": [schedule_view(r) for r in rows]}


@post("/schedules/{schedule_id:str}/pause", status_code=200)
async def pause_schedule(
    request: Request[Any, Any, Any], schedule_id: FromPath[str]
) -> dict[str, Any]:
    return schedule_view(await _schedules(_rt(request)).pause(schedule_id))


@post("/schedules/{schedule_id:str}/resume", status_code=200)
async def resume_schedule(
    request: Request[Any, Any, Any], schedule_id: FromPath[str]
) -> dict[str, Any]:
    return schedule_view(await _schedules(_rt(request)).resume(schedule_id))


@delete("/schedules/{schedule_id:str}", status_code=200)
async def delete_schedule(
    request: Request[Any, Any, Any], schedule_id: FromPath[str]
) -> dict[str, Any]:
    deleted = await _schedules(_rt(request)).delete(schedule_id)
    return {"schedule_id": schedule_id, "deleted": deleted}


ROUTES = [create_schedule, list_schedules, pause_schedule, resume_schedule, delete_schedule]
