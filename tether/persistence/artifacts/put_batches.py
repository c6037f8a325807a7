"""Artifacts of turns committed at the same time, written in one transaction.

Each large turn must see its artifacts committed before it appends its own rows. Written one
put per turn, that is a transaction (an fsync with ``durability="full"``) per large step on
top of the turns' group commit; here the puts that arrive while one batch is being written
wait and go together in the next, as the journal writer groups turns. A task writes the
batches while any are queued, so a caller that gives up waiting (cancelled) takes nobody
else's batch down with it.

Example::

    batches = PutBatches(store.put_artifacts)
    await batches.put([b"...", b"..."], at_ms)      # returns once they are committed
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tether.persistence.contract import StorageError

Put = Callable[[Sequence[bytes], int], Awaitable[list[str]]]


@dataclass(slots=True)
class _Waiting:
    blobs: Sequence[bytes]
    at_ms: int
    future: asyncio.Future[None]


class PutBatches:
    """Puts grouped into transactions (see the module docstring)."""

    def __init__(self, put: Put) -> None:
        self._put = put
        self._queue: list[_Waiting] = []
        self._task: asyncio.Task[None] | None = None
        #: Transactions written so far.
        self.transactions = 0

    async def put(self, blobs: Sequence[bytes], at_ms: int) -> None:
        """Return once ``blobs`` are committed; StorageError when their transaction failed."""
        waiting = _Waiting(blobs, at_ms, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if self._task is None:
            self._task = asyncio.ensure_future(self._write())
        await waiting.future

    async def _write(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                self.transactions += 1
                blobs = [b for w in batch for b in w.blobs]
                try:
                    await self._put(blobs, max(w.at_ms for w in batch))
                except Exception as exc:
                    error = exc if isinstance(exc, StorageError) else StorageError(
                        f"artifacts not written: {exc!r}")  # fmt: skip
                    _settle(batch, error)
                else:
                    _settle(batch, None)
        finally:  # stopped (the loop is closing): nobody is left waiting for ever
            stranded, self._queue = self._queue, []
            _settle(stranded, StorageError("artifact writer stopped"))
            self._task = None


def _settle(batch: list[_Waiting], error: BaseException | None) -> None:
    for w in batch:
        if w.future.done():  # its caller gave up waiting
            continue
        if error is None:
            w.future.set_result(None)
        else:
            w.future.set_exception(error)
