"""The head signer: follows the journal and signs each execution's newest chain head in
batches, off the step's path.

The writer hands over the heads it committed since the last pass (``AuditLog.take_heads``, a
dict swap); a pass signs them all with one Ed25519 signature over a Merkle root (``merkle``)
and stores each head with that signature and its proof through the store's one writer, in one
transaction: a pass costs one signature however many executions moved. The first pass also
signs the heads committed while no signer ran (``unsigned_heads``: after a crash, or an engine
started without a key), and closing makes a last pass, so an orderly stop leaves every head
signed. Rows committed since the last pass are chained but not yet signed; ``verify`` says how
many.

Example::

    async with HeadSigner(store.audit_log(), key, now_ms, interval_s=1.0):
        ...                                  # the engine runs; heads are signed every second
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

import anyio
import anyio.abc

from tether.governance.keys import SigningKey
from tether.persistence.audit_chain import AuditLog, ChainHead, HeadSignature
from tether.persistence.contract import StorageError

log = logging.getLogger(__name__)


class HeadSigner:
    """Signs chain heads every ``interval_s`` seconds (see the module docstring)."""

    def __init__(
        self,
        audit_log: AuditLog,
        key: SigningKey,
        now_ms: Callable[[], int],
        interval_s: float = 1.0,
    ) -> None:
        self._log = audit_log
        self._key = key
        self._now_ms = now_ms
        self._interval = interval_s
        self._caught_up = False
        self._tg: anyio.abc.TaskGroup | None = None
        self.signed = 0  # signatures written, for tests and metrics

    async def sign_pending(self) -> int:
        """One pass: sign the heads committed since the last one; return how many."""
        heads: dict[str, ChainHead] = {}
        if not self._caught_up:
            self._log.take_heads()  # start following before reading what is unsigned
            for head in await self._log.unsigned_heads():
                heads[head.execution_id] = head
            self._caught_up = True
        for head in self._log.take_heads():
            heads[head.execution_id] = head  # a newer head of the same execution wins
        if not heads:
            return 0
        at = self._now_ms()
        key = self._key
        batch = [heads[eid] for eid in sorted(heads)]
        signature, proofs = key.sign_heads([(h.execution_id, h.seq, h.chain) for h in batch])
        signatures = [
            HeadSignature(h.execution_id, h.seq, h.chain, key.key_id, signature, at, proof)
            for h, proof in zip(batch, proofs, strict=True)
        ]
        await self._log.put_signatures(signatures)
        self.signed += len(signatures)
        return len(signatures)

    async def _follow(self) -> None:
        while True:
            try:
                await self.sign_pending()
            except StorageError as exc:  # the store is closing or broken: the engine says so
                log.warning("audit signer: pass failed: %s", exc)
            await anyio.sleep(self._interval)

    async def __aenter__(self) -> HeadSigner:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._follow)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(exc_type, exc, tb)
        if exc_type is None:
            try:
                await self.sign_pending()  # an orderly stop leaves every head signed
            except StorageError as err:
                log.warning("audit signer: last pass failed: %s", err)
