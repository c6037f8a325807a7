"""The audit chain on Postgres: the same links, signed heads and verdicts as on SQLite, and
an edit behind the engine's back is named (runs when TETHER_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from audit_runs import COUNTER, add_one

from tether import Runtime
from tether.governance import HeadSigner, init_keys, load_keyring, verify_all_stored
from tether.persistence import NewRecord, Turn
from tether.persistence.postgres import PostgresStore

pytestmark = pytest.mark.anyio


async def test_a_signed_run_verifies_and_an_edit_is_named(
    postgres_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    key = init_keys(keys)
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        signer = HeadSigner(store.audit_log(), key, lambda: 1)
        await signer.sign_pending()
        async with Runtime(store=store, tools=[add_one]) as rt:
            wf = rt.register_yaml(COUNTER)
            runs = [await rt.start(wf, {"n": n}) for n in range(3)]
            for run in runs:
                await run.result()
        # Turns of several executions racing through group commits chain as well, two
        # turns of one execution in one group included.
        pair = (NewRecord("x", b"1"), NewRecord("y", b"2"))
        await asyncio.gather(
            *(store.append(Turn(f"raw{i}", 1, pair)) for i in range(4)),
            store.append(Turn("twice", 1, pair)),
            store.append(Turn("twice", 3, pair)),
        )
        assert await signer.sign_pending() == 8
        verdicts = await verify_all_stored(store, load_keyring(keys))
    finally:
        await store.close()
    assert len(verdicts) == 8
    for v in verdicts:
        assert v.ok and v.chained_from == 1 and v.signed_through == v.head_seq, v.describe()
    eid = runs[1].id
    with psycopg.connect(postgres_url) as conn:
        conn.execute(
            "UPDATE tether_journal SET payload = payload || '\\x00'::bytea"
            " WHERE execution_id = %s AND seq = 4",
            (eid,),
        )
    async with PostgresStore(postgres_url, readonly=True) as reader:
        verdicts = {v.execution_id: v for v in await verify_all_stored(reader, load_keyring(keys))}
    assert not verdicts[eid].ok and verdicts[eid].bad_seq == 4
    assert sum(v.ok for v in verdicts.values()) == 7
