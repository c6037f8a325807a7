"""Large values out of journal payloads and back (tether.persistence.artifacts.spill and the
store front that uses it): what is spilled decodes back equal (I2), the rows keep references
only, a reference that does not resolve stops that execution's reads with the row and digest
named (I7), and the retention sweep never removes an artifact a row or snapshot references,
however runs, references and sweeps interleave (I9)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.persistence import MemoryStore, SqliteStore, Store
from tether.persistence.artifacts.contract import ArtifactStore
from tether.persistence.artifacts.front import SpillingStore
from tether.persistence.artifacts.put_batches import PutBatches
from tether.persistence.artifacts.spill import (
    REF_MARKER,
    SpillPlaces,
    referenced,
    references,
    resolved,
    spilled,
)
from tether.persistence.contract import (
    IndexUpdate,
    JournalCorruption,
    NewRecord,
    SnapshotCorruption,
    StorageError,
    Turn,
)
from tether.testing.clock import VirtualClock

pytestmark = pytest.mark.anyio

PLACES = SpillPlaces((("output",), ("input", "*")), (("data", "*"),), snapshot_prefix=1)
LIMIT = 64

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=120), st.binary(max_size=120),
)  # fmt: skip
values = st.recursive(
    leaves,
    lambda kids: (
        st.lists(kids, max_size=6) | st.dictionaries(st.text(max_size=8), kids, max_size=6)
    ),
    max_leaves=30,
)


def record(output: Any, **inputs: Any) -> bytes:
    return msgspec.msgpack.encode({"type": "node_completed", "node_id": "n", "output": output,
                                   "input": inputs, "error": "e" * 10})  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(output=values, inputs=st.dictionaries(st.text(max_size=5), values, max_size=4))
def test_a_spilled_payload_decodes_back_equal_I2(output: Any, inputs: dict[str, Any]) -> None:
    payload = record(output, **inputs)
    thin, blobs = spilled(payload, LIMIT, PLACES.records)
    assert msgspec.msgpack.decode(resolved(thin, blobs)) == msgspec.msgpack.decode(payload)
    assert set(referenced(thin)) == set(blobs)  # every reference written, none more
    assert references(thin) >= set(blobs)  # the sweep's byte scan misses none
    for digest, blob in blobs.items():
        assert hashlib.sha256(blob).hexdigest() == digest
        assert referenced(blob) == []  # artifacts hold no references
    thin_record = msgspec.msgpack.decode(thin)
    assert thin_record["error"] == "e" * 10 and thin_record["node_id"] == "n"  # not a place
    if len(payload) <= LIMIT:
        assert thin is payload and blobs == {}


def test_one_large_value_is_one_artifact_wherever_it_sits() -> None:
    doc = "d" * 5000
    thin, blobs = spilled(record({"doc": doc, "n": 1}, doc=doc), LIMIT, PLACES.records)
    assert list(blobs.values()) == [msgspec.msgpack.encode(doc)]
    shown = msgspec.msgpack.decode(thin)
    assert shown["output"]["n"] == 1 and len(thin) < 200
    # Many small parts: the value as a whole, since no part alone is large.
    many = list(range(100))
    thin, blobs = spilled(record(many), LIMIT, PLACES.records)
    assert list(blobs.values()) == [msgspec.msgpack.encode(many)]


def started(at: int = 1) -> IndexUpdate:
    return IndexUpdate("running", at, workflow_id="wf", workflow_version="1", created_at_ms=at)


def front(store: Store, clock: VirtualClock | None = None) -> SpillingStore:
    return SpillingStore(store, LIMIT, clock or VirtualClock(), PLACES)


def state(**data: Any) -> bytes:
    return b"\x03" + msgspec.msgpack.encode({"status": "running", "data": data})


async def test_the_rows_hold_references_and_reads_give_the_values_back(store: Store) -> None:
    doc = "x" * 10_000
    f = front(store)
    rows = (NewRecord("node_completed", record(doc)), NewRecord("small", b"\x80"))
    await f.append(Turn("e1", 1, rows, snapshot=state(doc=doc, n=1), index=started()))
    stored = await store.read("e1")
    assert REF_MARKER in stored[0].payload and len(stored[0].payload) < 200
    assert stored[1].payload == b"\x80"
    snap = await store.latest_snapshot("e1")
    assert snap is not None and len(snap.payload) < 200
    assert [msgspec.msgpack.decode(r.payload) for r in await f.read("e1")] == [
        msgspec.msgpack.decode(rows[0].payload), {}]  # fmt: skip
    resolved_snap = await f.latest_snapshot("e1")
    assert resolved_snap is not None and resolved_snap.payload[:1] == b"\x03"
    assert msgspec.msgpack.decode(resolved_snap.payload[1:])["data"] == {"doc": doc, "n": 1}
    loaded = (await f.load_executions(["e1"]))["e1"]
    assert loaded.snapshot == resolved_snap and loaded.records == []
    assert isinstance(store, ArtifactStore)
    assert len(await store.list_artifacts()) == 1  # the doc, once for the row and the state
    assert not f.pending


async def test_a_missing_or_corrupt_artifact_names_the_row_I7(store: Store) -> None:
    f = front(store)
    await f.append(Turn("e1", 1, (NewRecord("a", b"\x80"),), index=started()))
    await f.append(Turn("e1", 2, (NewRecord("b", record("y" * 500)),), snapshot=state(d="z" * 500)))
    await f.append(Turn("e2", 1, (NewRecord("a", record("w" * 500)),), index=started()))
    assert isinstance(store, ArtifactStore)
    gone = hashlib.sha256(msgspec.msgpack.encode("y" * 500)).hexdigest()
    await store.delete_artifacts([gone], touched_before_ms=2**62)
    with pytest.raises(JournalCorruption, match=f"row 2 references artifact sha256:{gone}, which"
                       " is missing"):  # fmt: skip
        await f.read("e1")
    assert set(await f.load_executions(["e1", "e2"])) == {"e1", "e2"}  # its snapshot is whole
    snap_digest = hashlib.sha256(msgspec.msgpack.encode("z" * 500)).hexdigest()
    await store.delete_artifacts([snap_digest], touched_before_ms=2**62)
    with pytest.raises(SnapshotCorruption, match=f"snapshot at seq 2 references .*{snap_digest}"):
        await f.latest_snapshot("e1")
    assert set(await f.load_executions(["e1", "e2"])) == {"e2"}  # left out; the others go on


class _Pool:
    """Values of the property test: a handful, so references often share an artifact."""

    VALUES = [c * 300 for c in "abcdef"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("turn"), st.integers(0, 3), st.integers(0, 5), st.booleans()),
            st.tuples(st.just("upload"), st.integers(0, 5), st.just(0), st.just(False)),
            st.tuples(st.just("sweep"), st.integers(0, 3), st.just(0), st.just(False)),
            st.tuples(st.just("tick"), st.integers(1, 3), st.just(0), st.just(False)),
        ),
        max_size=30,
    ),
    sqlite=st.booleans(),
)
async def test_a_sweep_never_removes_a_referenced_artifact_I9(
    tmp_path: Path, steps: list[tuple[str, int, int, bool]], sqlite: bool
) -> None:
    clock = VirtualClock()
    inner: Any = (
        SqliteStore(tmp_path / f"s{abs(hash(tuple(steps)))}.db") if sqlite else MemoryStore()
    )
    await inner.open()
    try:
        f = front(inner, clock)
        last: dict[str, int] = {}
        uploaded: set[str] = set()
        for kind, a, b, snap in steps:
            if kind == "turn":  # run `a` records value `b` (and its state holds it)
                eid = f"run-{a}"
                seq = last.get(eid, 0) + 1
                value = _Pool.VALUES[b]
                snapshot = state(v=value) if snap else None
                index = started() if seq == 1 else None
                await f.append(Turn(eid, seq, (NewRecord("r", record(value)),), snapshot, index))
                last[eid] = seq
            elif kind == "upload":  # through the API: nothing references it
                uploaded |= set(await inner.put_artifacts([f"u{a}".encode()], _ms(clock)))
            elif kind == "sweep":  # min_age of `a` seconds
                report = await f.sweep_artifacts(a * 1000)
                used: set[str] = set()
                for payload in await inner.artifact_references(REF_MARKER):
                    snapshot = payload[:1] == b"\x03"  # a state, after its format byte
                    used |= set(referenced(payload, 1 if snapshot else 0))
                assert not used & set(report.removed)
                for digest in used:  # every reference still resolves, verified
                    assert await inner.get_artifact(digest) is not None
                kept = {i.digest: i for i in await inner.list_artifacts()}
                for digest, info in kept.items():  # and what is left has a reason to be
                    assert digest in used or info.touched_at_ms >= _ms(clock) - a * 1000
            else:
                clock.advance(a)
        for eid in last:  # and every journal still reads whole
            for row in await f.read(eid):
                assert REF_MARKER not in row.payload
    finally:
        await inner.close()


def _ms(clock: VirtualClock) -> int:
    return int(clock.now() * 1000)


class _HeldStore(MemoryStore):
    """A memory store whose next append waits until ``go`` is set (a commit in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = anyio.Event()
        self.go = anyio.Event()

    async def append(self, turn: Turn) -> int:
        self.holding.set()
        await self.go.wait()
        return await super().append(turn)


async def test_a_sweep_spares_the_artifacts_of_a_turn_being_committed_I9() -> None:
    inner = _HeldStore()
    await inner.open()
    clock = VirtualClock()
    f = front(inner, clock)
    doc = "q" * 1000
    async with anyio.create_task_group() as tg:
        tg.start_soon(f.append, Turn("e1", 1, (NewRecord("r", record(doc)),), index=started()))
        await inner.holding.wait()  # its artifact is written, its turn not yet committed
        clock.advance(10)
        report = await f.sweep_artifacts(0)
        assert report.removed == () and len(f.pending) == 1
        inner.go.set()
    assert not f.pending
    [row] = await f.read("e1")
    assert msgspec.msgpack.decode(row.payload)["output"] == doc


async def test_puts_that_arrive_together_share_a_transaction_and_fail_alone() -> None:
    calls: list[list[bytes]] = []
    gate = anyio.Event()

    async def put(blobs: Any, at_ms: int) -> list[str]:
        calls.append(list(blobs))
        if len(calls) == 1:
            await gate.wait()  # the first batch is being written meanwhile
        if b"bad" in blobs:
            raise OSError("disk full")
        return []

    batches = PutBatches(put)
    done: list[bytes] = []
    failed: list[bytes] = []

    async def one(blob: bytes) -> None:
        try:
            await batches.put([blob], 1)
            done.append(blob)
        except StorageError as exc:
            assert "disk full" in str(exc)
            failed.append(blob)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, b"first")
        while not calls:
            await anyio.lowlevel.checkpoint()
        for blob in (b"a", b"bad", b"b"):
            tg.start_soon(one, blob)
        with anyio.CancelScope() as scope:  # a caller that gives up: the others go on
            scope.cancel()
            await batches.put([b"gave-up"], 1)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert calls[0] == [b"first"] and len(calls) == 2  # two transactions for five puts
    assert sorted(calls[1]) == [b"a", b"b", b"bad", b"gave-up"]
    assert done == [b"first"] and sorted(failed) == [b"a", b"b", b"bad"]
    assert batches.transactions == 2
