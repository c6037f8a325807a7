"""The workflow versions a runtime knows, identified by their content (I13).

A version registered in this process is kept in memory; one that was persisted is in the
store's registry, which outlives the process. Both are checked by content digest
(:func:`tether.ir.identity.workflow_digest`): the same content is accepted from anywhere, any
number of times, before and after a restart; different content under a registered
``id@version`` is refused with :class:`WorkflowVersionConflict`, every time, and the version
that runs is always the one in the registry.

Example::

    registry = WorkflowRegistry()
    registry.add(wf)                               # refuses an id@version known with other content
    await registry.persist(store, wf, at_ms)       # the same check against the store
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from tether.ir.identity import canonical_ir, digest_of, short_digest, workflow_digest
from tether.ir.types import Workflow, decode_workflow
from tether.persistence.contract import Store, WorkflowVersionConflict

_Key = tuple[str, str]


class WorkflowVersion(msgspec.Struct, frozen=True):
    """One registered version, as ``GET /workflows`` and ``tether workflows`` show it."""

    workflow_id: str
    version: str
    digest: str
    created_at_ms: int


def version_conflict(wf: Workflow, registered: str, submitted: str) -> WorkflowVersionConflict:
    """The one refusal for changed content under a registered version, naming both digests."""
    return WorkflowVersionConflict(
        f"workflow {wf.workflow_id} version {wf.version} is already registered with content "
        f"{short_digest(registered)}, and this submission's content is "
        f"{short_digest(submitted)}: register the changed workflow under a new version"
    )


class _Held(NamedTuple):
    """A registered version as the registry keeps it: what runs, its digest, its bytes."""

    workflow: Workflow
    digest: str
    canonical: bytes


class WorkflowRegistry:
    """What this runtime registered (memory) and what it checked against the store."""

    def __init__(self) -> None:
        self._known: dict[_Key, _Held] = {}
        self._latest: dict[str, Workflow] = {}
        # The store's digest per version once seen, and the object last persisted as it: a
        # start with that same object skips hashing (it is on every start's path).
        self._stored: dict[_Key, str] = {}
        self._persisted: dict[_Key, Workflow] = {}
        # The object last submitted as each version: starting with it again needs no hashing.
        self._submitted: dict[_Key, Workflow] = {}

    def add(self, wf: Workflow) -> Workflow:
        """Keep ``wf``'s content for lookups, and return it as the registry holds it (what
        runs); refuse it if its version is known with other content.

        The returned object is read back from the canonical IR, so it is exactly what a
        restarted engine reads from the store (a dict key ``1`` is ``"1"`` in both), and a
        later change to the submitted object's dicts does not reach the runs.
        """
        key = (wf.workflow_id, wf.version)
        canonical = canonical_ir(wf)
        digest = digest_of(canonical)
        known = self._known.get(key)
        for registered in (known.digest if known else digest, self._stored.get(key, digest)):
            if registered != digest:
                raise version_conflict(wf, registered, digest)
        held = msgspec.structs.replace(decode_workflow(canonical), locations=wf.locations)
        self._known[key] = _Held(held, digest, canonical)
        self._submitted[key] = wf
        self._latest[wf.workflow_id] = held
        return held

    def resolve(self, wf: Workflow) -> Workflow | None:
        """The registry's own copy of ``wf`` if ``wf`` is that copy or the object it was
        registered from; None if ``wf`` must be registered (checked) first."""
        key = (wf.workflow_id, wf.version)
        known = self._known.get(key)
        if known is not None and (known.workflow is wf or self._submitted.get(key) is wf):
            return known.workflow
        return None

    def digest(self, wf: Workflow) -> str:
        """``wf``'s content digest: the one computed when it was registered, if it is the
        registry's copy (hashing a large IR again costs as much as validating it)."""
        known = self._held(wf)
        return known.digest if known is not None else workflow_digest(wf)

    def _held(self, wf: Workflow) -> _Held | None:
        """What the registry keeps for ``wf`` if ``wf`` is its own copy."""
        known = self._known.get((wf.workflow_id, wf.version))
        return known if known is not None and known.workflow is wf else None

    def get(self, workflow_id: str, version: str | None) -> Workflow | None:
        """A version registered here (the latest registered here when ``version`` is None)."""
        if version is None:
            return self._latest.get(workflow_id)
        known = self._known.get((workflow_id, version))
        return known.workflow if known is not None else None

    async def persist(self, store: Store, wf: Workflow, at_ms: int) -> bool:
        """Put ``wf`` in the store's registry, or check it equals what is there.

        Returns True the first time this version is confirmed in this process (the caller
        then compiles its graph). Raises WorkflowVersionConflict on different content.
        """
        key = (wf.workflow_id, wf.version)
        if self._persisted.get(key) is wf:
            return False
        digest = self.digest(wf)
        try:
            stored = self._stored.get(key)
            if stored is None:
                stored = await self._store_digest(store, wf, digest, at_ms)
                self._stored[key] = stored
            if stored != digest:
                raise version_conflict(wf, stored, digest)
        except BaseException:
            # Refused, or the store failed: lookups must not keep finding this submission.
            self._forget(key, digest)
            raise
        first = key not in self._persisted
        self._persisted[key] = wf
        return first

    async def _store_digest(self, store: Store, wf: Workflow, digest: str, at_ms: int) -> str:
        """The digest of the store's row for ``wf``'s version, inserting ``wf`` if none."""
        row = await store.get_workflow(wf.workflow_id, wf.version)
        if row is None:
            try:
                held = self._held(wf)
                canonical = held.canonical if held is not None else canonical_ir(wf)
                await store.put_workflow(wf.workflow_id, wf.version, canonical, at_ms)
                return digest
            except WorkflowVersionConflict:
                # Another registration of this version won the insert: compare with it.
                row = await store.get_workflow(wf.workflow_id, wf.version)
                if row is None:
                    raise
        # Decoded and hashed again, not compared as bytes: rows written before content
        # digests carry source locations, and another encoder may order keys differently.
        return workflow_digest(decode_workflow(row.ir))

    def _forget(self, key: _Key, digest: str) -> None:
        """Drop a refused submission kept by ``add``, so lookups find the registered one."""
        known = self._known.get(key)
        if known is not None and known.digest == digest and key not in self._persisted:
            del self._known[key]
            self._submitted.pop(key, None)
            if self._latest.get(key[0]) is known.workflow:
                del self._latest[key[0]]  # lookups of the latest fall back to the store

    async def versions(self, store: Store) -> list[WorkflowVersion]:
        """Every version in the store's registry, with its content digest (each stored IR
        hashed once per process: rows never change)."""
        out = []
        for r in await store.list_workflows():
            key = (r.workflow_id, r.version)
            digest = self._stored.get(key)
            if digest is None:
                digest = self._stored[key] = workflow_digest(decode_workflow(r.ir))
            out.append(WorkflowVersion(r.workflow_id, r.version, digest, r.created_at_ms))
        return out
