"""``POST /artifacts``, ``GET /artifacts/{digest}`` and ``POST /artifacts/sweep``: the
engine's content-addressed store over HTTP (I9), under the same bearer tokens as every route.

A body is kept under its SHA-256 (the same bytes again: the same digest, stored once; as
large as the server's ``TETHER_MAX_BODY_BYTES``); a read answers the verified bytes, 404 for
an unknown digest, 400 for one that is not 64 hex digits, and 500 naming the digest when the
stored bytes fail their check (never the bytes). An uploaded artifact nothing references is
removed by a sweep once older than its ``min_age``.

Example::

    POST /artifacts  (application/octet-stream body)  -> 201 {"digest": "sha256:9f86...", "size": 4}
    GET /artifacts/sha256:9f86...                      -> 200 the bytes
    POST /artifacts/sweep?min_age=3600                 -> 200 {"removed": [...], ...}
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery

from tether.persistence.artifacts.contract import ArtifactCorruption, check_digest
from tether.runtime.runtime import Runtime
from tether.server.request_gate import BYTES_BODY

log = logging.getLogger("tether.server")


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@post("/artifacts", status_code=201, opt={BYTES_BODY: True})
async def put_artifact(request: Request[Any, Any, Any]) -> dict[str, Any]:
    data = await request.body()
    digest = await _rt(request).put_artifact(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


@get("/artifacts/{digest:str}", media_type="application/octet-stream")
async def get_artifact(request: Request[Any, Any, Any], digest: FromPath[str]) -> Response[bytes]:
    try:
        check_digest(digest)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    try:
        data = await _rt(request).get_artifact(digest)
    except ArtifactCorruption as exc:
        log.error("%s", exc)
        return Response(str(exc).encode(), status_code=500, media_type="text/plain")
    if data is None:
        raise NotFoundException(f"no artifact {digest}")
    plain = digest.removeprefix("sha256:")
    return Response(data, media_type="application/octet-stream", headers={"ETag": f'"{plain}"'})


@post("/artifacts/sweep", status_code=200)
async def sweep_artifacts(
    request: Request[Any, Any, Any], min_age: FromQuery[float] = 3600.0
) -> dict[str, Any]:
    if not 0 <= min_age <= 10 * 365 * 86400:
        raise HTTPException(
            status_code=400, detail=f"min_age must be 0 or more seconds, got {min_age}"
        )
    report = await _rt(request).sweep_artifacts(min_age)
    return {
        "removed": [f"sha256:{d}" for d in report.removed],
        "referenced": report.referenced,
        "young": report.young,
        "total": report.total,
    }


ROUTES = [put_artifact, get_artifact, sweep_artifacts]
