"""``GET /metrics``: the engine's runtime metrics in the Prometheus text format.

The body is :func:`tether.runtime.metrics.runtime_metrics`'s registry for the engine's one
runtime (its own ``CollectorRegistry``, not prometheus_client's global one). It is behind
the bearer token like every route but ``/health``: Prometheus sends one with
``authorization: {credentials: ...}`` in its scrape config.

Example::

    GET /metrics
    -> 200 text/plain; version=0.0.4
       tether_steps_finished_total{outcome="completed"} 12.0
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from tether.runtime.metrics import CONTENT_TYPE_LATEST, RuntimeMetrics


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime_metrics: RuntimeMetrics = request.app.state.metrics
    body = await runtime_metrics.scrape()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
