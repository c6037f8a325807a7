"""``MsgspecLitestar``: a Litestar app with only the plugins an API of msgspec types needs.

Litestar adds its pydantic (and attrs) plugins to every app whose process can import them,
importing pydantic to find out: about 0.1 s of every engine start (0.2 s on a loaded machine;
issue 19: a restarted engine's start lands in its runs' latency) for an API whose routes take
and return msgspec structs, dicts and lists only. pydantic is installed beside Tether (the
``mcp`` SDK needs it), so the check would always pay.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.plugins import PluginProtocol
from litestar.plugins.core import MsgspecDIPlugin


class MsgspecLitestar(Litestar):
    """Litestar with its msgspec plugin only (its ``_get_default_plugins`` adds pydantic's and
    attrs' when they are importable). A route taking a pydantic model would need them back:
    none does, and the import probe test says if pydantic is loaded again."""

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        plugins.append(MsgspecDIPlugin())
        return plugins
