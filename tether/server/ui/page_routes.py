"""The dashboard's page and files: ``GET /ui`` and ``GET /ui/static/{name}``, from package data
(``tether/server/ui/static``), never a CDN: an engine on a machine without a network serves
the whole dashboard.

These routes answer without a token: they hold no data, only the page's code, the same for
everyone. Every figure the page shows comes from the JSON API under the same bearer token as
any client's (see the README's "Dashboard": the page asks for the token once per tab). The
page is sent with a Content-Security-Policy that lets it load and call nothing but this
engine and run no inline script, so a run's input or a tool's error shown on it cannot
become code, and no other site can frame it.

Example::

    Litestar(route_handlers=[*page_routes.ROUTES, ...])   # then open http://127.0.0.1:7700/ui
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from tether.server.auth import PUBLIC

#: What the page may load and call: this engine only; no inline script, no framing.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # A new engine version must not run with an old page's code: revalidate every load.
    "cache-control": "no-cache",
}
_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _files() -> dict[str, bytes]:
    """Every file of the static folder, read once (they are small and never change)."""
    folder = resources.files("tether.server.ui").joinpath("static")
    return {
        item.name: item.read_bytes()
        for item in folder.iterdir()
        if item.is_file() and any(item.name.endswith(ext) for ext in _TYPES)
    }


_FILES: Final = _files()


def _file(name: str) -> Response[bytes]:
    body = _FILES.get(name)
    if body is None:
        raise NotFoundException(f"no dashboard file {name[:100]!r}")
    media = next(t for ext, t in _TYPES.items() if name.endswith(ext))
    return Response(body, media_type=media, headers=HEADERS)


@get("/ui", opt={PUBLIC: True}, include_in_schema=False)
async def dashboard() -> Response[bytes]:
    """The page (``/ui/`` too: Litestar takes both as one path)."""
    return _file("index.html")


@get("/ui/static/{name:str}", opt={PUBLIC: True}, include_in_schema=False)
async def dashboard_file(name: FromPath[str]) -> Response[bytes]:
    return _file(name)


ROUTES = [dashboard, dashboard_file]
