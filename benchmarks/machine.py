"""The machine a benchmark ran on, and the median/spread every figure is reported with.

Example::

    describe()          # {"cores": 2, "python": "3.11.7", "sqlite": "3.40.1", ...}
    summary([3.0, 1.0, 2.0])    # {"median": 2.0, "spread": 2.0, "n": 3}
"""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import statistics
from typing import Any


def describe() -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "loadavg_at_start": load,
    }


def banner(machine: dict[str, Any]) -> str:
    return (
        f"{machine['date']} · {machine['cores']} cores · Python {machine['python']} · "
        f"SQLite {machine['sqlite']} · load {machine['loadavg_at_start']}"
    )


def summary(values: list[float]) -> dict[str, float]:
    """Median, spread (max - min) and count: how every figure is reported."""
    return {
        "median": statistics.median(values),
        "spread": max(values) - min(values),
        "n": len(values),
    }
