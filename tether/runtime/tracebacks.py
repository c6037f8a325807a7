"""A failing tool's traceback as journal text, bounded in size.

A ``node_failed`` record keeps the traceback so a failure can be read where it is stored, but a
deep recursion or a huge exception message must not bloat the journal (I9). When it is too
long, the outermost frames go first: the innermost ones, where the error was raised, and the
exception line are what a reader needs. A first line says what was dropped.

Example::

    try:
        parse(text)
    except ValueError as exc:
        text = exception_traceback(exc)        # "Traceback (most recent call last): ..."
    bounded(huge)                              # "[traceback truncated: ...]\\n  File ..."
"""

from __future__ import annotations

import traceback
from typing import Final

__all__ = ["TRACEBACK_LIMIT", "bounded", "exception_traceback"]

#: Characters of traceback a record keeps at most (the truncation note included).
TRACEBACK_LIMIT: Final = 4096


def exception_traceback(exc: BaseException, *, skip_frames: int = 0) -> str:
    """``exc``'s formatted traceback (chained causes included), bounded.

    ``skip_frames`` leaves out that many outermost frames: the caller's own, which say where
    Tether called the tool, the same for every failure.
    """
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is None or tb.tb_next is None:
            break
        tb = tb.tb_next
    return bounded("".join(traceback.format_exception(type(exc), exc, tb)))


def bounded(text: str, limit: int = TRACEBACK_LIMIT) -> str:
    """``text`` if it fits in ``limit`` characters, else its last frames (whole ones, when
    they fit) after a note saying how much was dropped. Text that fits is returned unchanged, so
    bounding twice (worker, then engine) changes nothing."""
    if len(text) <= limit:
        return text
    # The note's length depends on the numbers in it; reserve room for the longest.
    room = limit - len(_note(len(text), len(text)))
    kept = text[-room:] if room > 0 else ""
    # Start at a frame, else at a line: no half a frame or line at the top.
    cut = kept.find("\n  File ")
    if cut < 0:
        cut = kept.find("\n")
    if 0 <= cut < len(kept) - 1:
        kept = kept[cut + 1 :]
    return _note(len(text) - len(kept), len(text)) + kept


def _note(dropped: int, total: int) -> str:
    return f"[traceback truncated: first {dropped} of {total} characters dropped]\n"
