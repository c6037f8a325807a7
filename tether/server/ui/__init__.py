"""The web dashboard at ``/ui`` and the cross-run JSON views it reads.

:mod:`.page_routes` serves the page and its files (package data, no CDN); :mod:`.list_routes`
the paged views (runs, counts, approvals, work items, queues, a run's timeline, who am I).
Both are part of :func:`tether.server.create_app`, so a service that mounts the engine's app
mounts the dashboard with it.

Example::

    app = create_app(runtime, ServerConfig())      # GET /ui, GET /views/executions, ...
"""

from tether.server.ui import list_routes, page_routes

ROUTES = [*page_routes.ROUTES, *list_routes.ROUTES]

__all__ = ["ROUTES"]
