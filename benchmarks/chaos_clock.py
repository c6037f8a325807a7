"""Runs the ``tether`` CLI with a wall clock that the chaos driver can jump: the scenario's
"clock jump on the engine" fault.

    python -m benchmarks.chaos_clock OFFSET_FILE dev --db ... (any ``tether`` arguments)

``time.time`` and ``time.time_ns`` (what ``tether.clock.SystemClock.now`` and so every record,
lease expiry and timer deadline read) return the real time plus the seconds written in
OFFSET_FILE, re-read every 20 ms by a thread; the monotonic clock is left alone, as an NTP
step leaves it. Writing a new number into the file (atomically: write, then rename) steps the
engine's clock forward or back while it runs, with no root and no change to Tether: the
launcher wraps the CLI, nothing in ``tether/`` knows about it. (libfaketime would move a
process's clock too, but it is a native preload library not installed here, and its file
mode re-reads on every call.)
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path

REREAD_SECS = 0.02


def install(offset_file: Path) -> None:
    """Shift ``time.time`` and ``time.time_ns`` by the file's seconds, followed as it changes."""
    real_time, real_ns = time.time, time.time_ns
    offset = [0.0]

    def read() -> None:
        # Not written yet, or unreadable for a moment: keep the last offset.
        with contextlib.suppress(OSError, ValueError):
            offset[0] = float(offset_file.read_text() or 0.0)

    def follow() -> None:
        while True:
            read()
            time.sleep(REREAD_SECS)

    read()
    time.time = lambda: real_time() + offset[0]
    time.time_ns = lambda: real_ns() + int(offset[0] * 1e9)
    threading.Thread(target=follow, name="chaos-clock", daemon=True).start()


def main() -> None:
    install(Path(sys.argv[1]))
    from tether.cli import main as cli_main  # after the clock is shifted

    sys.exit(cli_main(sys.argv[2:]))


if __name__ == "__main__":
    main()
