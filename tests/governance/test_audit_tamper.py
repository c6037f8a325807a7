"""Tampering with a real SQLite file behind the engine's back: each kind is caught by
``tether audit verify``, which names the first bad entry; key rotation keeps old signatures
verifiable."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from audit_runs import raw, relink_from, rewrite_payload, rows_of, run_counters, sign_all

from tether.cli import main
from tether.governance import (
    AuditKeyError,
    AuditVerdict,
    init_keys,
    load_keyring,
    load_signing_key,
    verify_all_stored,
    verify_stored,
)
from tether.persistence import SqliteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    init_keys(directory)
    return directory


async def _signed_runs(db: Path, keys: Path, runs: int = 2) -> list[str]:
    key = load_signing_key(keys)
    assert key is not None
    return await run_counters(db, runs, key)


async def _cli(*args: str) -> int:
    """``tether audit ARGS`` as a user runs it (its own event loop: off this one's thread)."""
    return await anyio.to_thread.run_sync(main, ["audit", *args])


async def _verify(db: Path, keys: Path, eid: str) -> AuditVerdict:
    async with SqliteStore(db, readonly=True) as store:
        return await verify_stored(store, load_keyring(keys), eid)


async def test_an_untouched_signed_run_verifies(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    verdict = await _verify(db, keys, eid)
    assert verdict.ok, verdict.describe()
    assert verdict.signed_through == verdict.head_seq == len(rows_of(db, eid))
    assert await _cli("verify", eid, "--db", str(db), "--keys", str(keys)) == 0
    assert await _cli("verify", "--all", "--db", str(db), "--keys", str(keys)) == 0


async def test_an_edited_row_is_named(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    eid, other = await _signed_runs(db, keys)
    raw(db, "UPDATE journal SET payload = x'00' || payload WHERE execution_id = ? AND seq = 3",
        (eid,))  # fmt: skip
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == 3 and "checksum" in (verdict.problem or "")
    assert (await _verify(db, keys, other)).ok  # the other execution is untouched
    capsys.readouterr()
    assert await _cli("verify", "--all", "--db", str(db), "--keys", str(keys)) == 1
    out = capsys.readouterr().out
    assert f"{eid}: BROKEN at seq 3" in out and "2 executions, 1 broken" in out


async def test_an_edit_with_its_checksum_recomputed_breaks_the_link(
    tmp_path: Path, keys: Path
) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    payload = rows_of(db, eid)[3][2]
    rewrite_payload(db, eid, 4, payload + b"\x00", relink=False)
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == 4 and "chain link" in (verdict.problem or "")


async def test_an_edit_with_every_link_recomputed_is_caught_by_the_signed_head(
    tmp_path: Path, keys: Path
) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    last = len(rows_of(db, eid))
    payload = rows_of(db, eid)[3][2]
    rewrite_payload(db, eid, 4, payload + b"\x00", relink=True)
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == last
    assert f"rows 1 to {last} were rewritten" in (verdict.problem or "")


async def test_a_deleted_row_is_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    raw(db, "DELETE FROM journal WHERE execution_id = ? AND seq = 5", (eid,))
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == 5 and "missing" in (verdict.problem or "")


async def test_a_deleted_row_with_the_rest_renumbered_is_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    raw(db, "DELETE FROM journal WHERE execution_id = ? AND seq = 5", (eid,))
    raw(db, "UPDATE journal SET seq = -seq WHERE execution_id = ? AND seq > 5", (eid,))
    raw(db, "UPDATE journal SET seq = -seq - 1 WHERE execution_id = ? AND seq < 0", (eid,))
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == 5


async def test_reordered_rows_are_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    rows = rows_of(db, eid)
    (_, t3, p3, c3, h3), (_, t4, p4, c4, h4) = rows[2], rows[3]
    for seq, (t, p, c, h) in ((3, (t4, p4, c4, h4)), (4, (t3, p3, c3, h3))):
        raw(db, "UPDATE journal SET type = ?, payload = ?, checksum = ?, chain = ?"
                " WHERE execution_id = ? AND seq = ?", (t, p, c, h, eid, seq))  # fmt: skip
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == 3


async def test_an_inserted_row_is_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    rows = rows_of(db, eid)
    # In the middle: seqs from 4 on move up one, and a forged row takes seq 4.
    raw(db, "UPDATE journal SET seq = -seq - 1 WHERE execution_id = ? AND seq >= 4", (eid,))
    raw(db, "UPDATE journal SET seq = -seq WHERE execution_id = ? AND seq < 0", (eid,))
    raw(db, "INSERT INTO journal VALUES (?, 4, ?, ?, ?, NULL)", (eid, *rows[3][1:4]))
    relink_from(db, eid, 4)  # a tamperer who knows the chain
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == 5, verdict.describe()  # the moved row


async def test_a_row_appended_behind_the_engine_is_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    rows = rows_of(db, eid)
    end = len(rows)
    raw(db, "INSERT INTO journal VALUES (?, ?, ?, ?, 0, NULL)", (eid, end + 1, *rows[-1][1:3]))
    from audit_runs import rewrite_payload as fix  # the checksum and link, done right

    fix(db, eid, end + 1, rows[-1][2], relink=True)
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == end + 1 and "appended" in (verdict.problem or "")


async def test_a_truncated_tail_is_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    end = len(rows_of(db, eid))
    raw(db, "DELETE FROM journal WHERE execution_id = ? AND seq > ?", (eid, end - 2))
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == end - 1 and "truncated" in (verdict.problem or "")
    # ... and with the index row lowered to match, the signed head still says so.
    raw(db, "UPDATE executions SET last_seq = ? WHERE execution_id = ?", (end - 2, eid))
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == end - 1 and "truncated" in (verdict.problem or "")


async def test_a_journal_deleted_whole_is_seen_by_verify_all(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    raw(db, "DELETE FROM journal WHERE execution_id = ?", (eid,))
    raw(db, "DELETE FROM executions WHERE execution_id = ?", (eid,))
    async with SqliteStore(db, readonly=True) as store:
        verdicts = {v.execution_id: v for v in await verify_all_stored(store, load_keyring(keys))}
    assert not verdicts[eid].ok and verdicts[eid].bad_seq == 1


async def test_a_swapped_signature_is_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, other = await _signed_runs(db, keys)
    end = len(rows_of(db, eid))
    [(sig, proof)] = raw(
        db, "SELECT signature, proof FROM audit_signatures WHERE execution_id = ?", (other,)
    )
    raw(db, "UPDATE audit_signatures SET signature = ?, proof = ? WHERE execution_id = ?",
        (sig, proof, eid))  # fmt: skip
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == end
    assert "does not verify" in (verdict.problem or "")


async def test_a_signature_from_another_signing_pass_is_named(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    [eid] = await _signed_runs(db, keys, runs=1)
    [other] = await _signed_runs(db, keys, runs=1)  # signed in a pass of its own
    [(sig,)] = raw(db, "SELECT signature FROM audit_signatures WHERE execution_id = ?", (other,))
    raw(db, "UPDATE audit_signatures SET signature = ? WHERE execution_id = ?", (sig, eid))
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and "does not verify" in (verdict.problem or "")


async def test_a_signature_by_a_key_outside_the_ring_is_refused(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    eid, _ = await _signed_runs(db, keys)
    stranger = tmp_path / "stranger"
    init_keys(stranger)
    verdict = await _verify(db, stranger, eid)  # verified against another engine's ring
    assert not verdict.ok and "not in the ring" in (verdict.problem or "")


async def test_a_rotated_key_leaves_old_signatures_verifiable(tmp_path: Path, keys: Path) -> None:
    db = tmp_path / "t.db"
    [first] = await _signed_runs(db, keys, runs=1)
    old_id = (await _verify(db, keys, first)).key_ids
    init_keys(keys, rotate=True)
    [second] = await _signed_runs(db, keys, runs=1)
    for eid in (first, second):
        assert (await _verify(db, keys, eid)).ok
    new_id = (await _verify(db, keys, second)).key_ids
    assert old_id != new_id and len(load_keyring(keys).keys) == 2
    # Without the old public key in the ring, the old signatures are not trusted.
    ring = keys / "keyring.json"
    kept = {k: v for k, v in json.loads(ring.read_text())["keys"].items() if k != old_id[0]}
    ring.write_text(json.dumps({"keys": kept}))
    verdict = await _verify(db, keys, first)
    assert not verdict.ok and "not in the ring" in (verdict.problem or "")


async def test_heads_committed_while_no_signer_ran_are_signed_at_its_first_pass(
    tmp_path: Path, keys: Path
) -> None:
    db = tmp_path / "t.db"
    [eid] = await run_counters(db, 1)  # no key: chained, unsigned
    assert (await _verify(db, keys, eid)).signed_through is None
    key = load_signing_key(keys)
    assert key is not None
    assert await sign_all(db, key) == 1
    verdict = await _verify(db, keys, eid)
    assert verdict.ok and verdict.signed_through == verdict.head_seq
    assert await sign_all(db, key) == 0  # nothing left unsigned


def test_verify_with_bad_arguments_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", "--db", str(tmp_path / "t.db")]) == 2
    assert main(["audit", "verify", "exec_x", "--db", str(tmp_path / "none.db")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such database" in err[1], err


async def test_a_truncated_unsigned_tail_is_named_against_the_index(
    tmp_path: Path, keys: Path
) -> None:
    db = tmp_path / "t.db"
    [eid] = await run_counters(db, 1)  # no signer: only the index knows where it ends
    end = len(rows_of(db, eid))
    raw(db, "DELETE FROM journal WHERE execution_id = ? AND seq = ?", (eid, end))
    verdict = await _verify(db, keys, eid)
    assert not verdict.ok and verdict.bad_seq == end and "truncated" in (verdict.problem or "")


async def test_keys_init_writes_a_private_key_only_its_owner_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "k"
    assert await anyio.to_thread.run_sync(main, ["keys", "init", "--keys", str(directory)]) == 0
    assert (directory / "signing_key.pem").stat().st_mode & 0o777 == 0o600
    # A second init is refused (one line), and a key others may read is refused at load.
    assert await anyio.to_thread.run_sync(main, ["keys", "init", "--keys", str(directory)]) == 1
    assert "already exists" in capsys.readouterr().err
    (directory / "signing_key.pem").chmod(0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        load_signing_key(directory)


def test_tether_dev_refuses_an_unusable_key_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "k"
    init_keys(directory)
    (directory / "signing_key.pem").chmod(0o644)
    monkeypatch.setenv("TETHER_AUDIT_KEYS", str(directory))
    monkeypatch.setenv("TETHER_DATABASE_URL", f"sqlite:///{tmp_path / 't.db'}")
    assert main(["dev"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "chmod 600" in err[0], err
