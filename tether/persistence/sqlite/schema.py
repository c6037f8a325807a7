"""The SQLite schema as numbered, forward-only migrations.

Each migration is ``(version, SQL)``; versions only grow and a released migration is never
edited (add a new one instead). ``migrate`` applies the missing ones in order, each in its own
transaction together with its row in ``schema_migrations``, so a crash mid-migration leaves the
database at the previous version. A database migrated by a newer Tether is refused.

Example::

    applied = await migrate(conn)        # e.g. [1, 2, 3] on a fresh file, [] afterwards
"""

from __future__ import annotations

import sqlite3

import aiosqlite

from tether.persistence.contract import SchemaTooNew, StorageError

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE journal (
            execution_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            payload BLOB NOT NULL,
            checksum INTEGER NOT NULL,
            PRIMARY KEY (execution_id, seq)
        ) WITHOUT ROWID;
        -- A rowid table: snapshots can be large, and WITHOUT ROWID suits small rows only.
        CREATE TABLE snapshots (
            execution_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            payload BLOB NOT NULL,
            checksum INTEGER NOT NULL,
            PRIMARY KEY (execution_id, seq)
        );
        -- Keep the two newest snapshots per execution (the older one stays for inspection
        -- when the newest fails its checksum); pruning in a trigger costs the writer no await.
        CREATE TRIGGER snapshots_keep_two AFTER INSERT ON snapshots BEGIN
            DELETE FROM snapshots
             WHERE execution_id = NEW.execution_id
               AND seq < (SELECT seq FROM snapshots WHERE execution_id = NEW.execution_id
                          ORDER BY seq DESC LIMIT 1 OFFSET 1);
        END;
        """,
    ),
    (
        2,
        """
        CREATE TABLE executions (
            execution_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            workflow_version TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            error TEXT
        );
        CREATE INDEX executions_status ON executions (status, created_at_ms);
        CREATE INDEX executions_created ON executions (created_at_ms);
        CREATE INDEX executions_workflow ON executions (workflow_id, created_at_ms);
        """,
    ),
    (
        3,
        """
        CREATE TABLE workflows (
            workflow_id TEXT NOT NULL,
            version TEXT NOT NULL,
            ir BLOB NOT NULL,
            created_at_ms INTEGER NOT NULL,
            PRIMARY KEY (workflow_id, version)
        );
        """,
    ),
    (
        4,
        # Work items and their leases (I5). A rowid table: payloads are opaque and may be large.
        """
        CREATE TABLE work_items (
            work_item_id TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL,
            node_id TEXT NOT NULL,
            queue TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            dispatch INTEGER NOT NULL,
            payload BLOB NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'parked', 'completed',
                                                   'failed', 'dead', 'cancelled')),
            not_before_ms INTEGER NOT NULL,
            lease_owner TEXT,
            lease_expires_ms INTEGER,
            fence INTEGER NOT NULL,
            parks INTEGER NOT NULL,
            last_error TEXT,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        );
        -- Grants scan this in exactly their order and stop at the limit. Partial, so it holds
        -- only grantable rows: a backlog of finished items costs a grant nothing, and a
        -- heartbeat (leased rows) never touches it.
        CREATE INDEX work_items_grantable ON work_items
            (queue, not_before_ms, created_at_ms, work_item_id)
            WHERE status IN ('pending', 'parked');
        -- expired_leases: a range scan in expiry order (status = 'leased').
        CREATE INDEX work_items_expiry ON work_items (status, lease_expires_ms);
        -- Listings by status (dead letters) and by execution, newest first.
        CREATE INDEX work_items_status ON work_items (status, created_at_ms);
        CREATE INDEX work_items_execution ON work_items (execution_id, created_at_ms);
        -- The table itself refuses what I5 forbids, whatever the writer's checks say: a fence
        -- never decreases, and a finished item never changes again.
        CREATE TRIGGER work_items_fence_only_grows BEFORE UPDATE OF fence ON work_items
        WHEN NEW.fence < OLD.fence BEGIN
            SELECT RAISE(ABORT, 'work item fence would decrease');
        END;
        CREATE TRIGGER work_items_terminal_is_final BEFORE UPDATE ON work_items
        WHEN OLD.status IN ('completed', 'failed', 'dead', 'cancelled') BEGIN
            SELECT RAISE(ABORT, 'work item is finished and cannot change');
        END;
        """,
    ),
    (
        5,
        """
        -- Lease expiry lives in the scheduler's memory (heartbeats never touch the table), so
        -- nothing reads leases in expiry order on the step path; the index cost a write per
        -- insert and per settle. expired_leases() scans the leased rows instead.
        DROP INDEX work_items_expiry;
        """,
    ),
    (
        6,
        # Cron schedules. The engine keeps them all in memory and reads the table only when it
        # starts, so there is no index beyond the primary key.
        """
        CREATE TABLE schedules (
            schedule_id TEXT PRIMARY KEY,
            cron TEXT NOT NULL,
            timezone TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            workflow_version TEXT NOT NULL,
            input BLOB NOT NULL,
            missed TEXT NOT NULL CHECK (missed IN ('skip', 'run_once')),
            paused INTEGER NOT NULL CHECK (paused IN (0, 1)),
            next_fire_ms INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            last_error TEXT
        );
        """,
    ),
    (
        7,
        # Passivation (I9): an execution is passivated while passive_seq = last_seq (its last
        # turn marked it; any later turn moves last_seq on, so the mark never needs clearing
        # on the step path). wake_at_ms is its earliest timer; the partial index lets recovery
        # arm those without touching the executions that wait for a signal only.
        """
        ALTER TABLE executions ADD COLUMN passive_seq INTEGER;
        ALTER TABLE executions ADD COLUMN wake_at_ms INTEGER;
        CREATE INDEX executions_wake ON executions (wake_at_ms, execution_id)
            WHERE wake_at_ms IS NOT NULL;
        """,
    ),
    (
        8,
        # The audit log (tether.persistence.audit_chain): each journal row's chain link,
        # written by the writer in the row's own insert (rows before this migration keep
        # NULL: the chain starts after them), and the signed chain heads. Signatures are
        # kept, never replaced, so every signed head stays checkable against the journal.
        """
        ALTER TABLE journal ADD COLUMN chain BLOB;
        CREATE TABLE audit_signatures (
            execution_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            chain BLOB NOT NULL,
            key_id TEXT NOT NULL,
            signature BLOB NOT NULL,
            signed_at_ms INTEGER NOT NULL,
            -- The head's Merkle proof up to the root the signature covers (one signature
            -- per signing pass; tether.governance.merkle).
            proof BLOB NOT NULL,
            PRIMARY KEY (execution_id, seq, key_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        9,
        # Durable memory (tether.agents.memory): facts per scope (user or tenant), written
        # once per (scope, fact_id) and read per scope only, so the key leads with the scope.
        """
        CREATE TABLE memory_facts (
            scope TEXT NOT NULL,
            fact_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            content TEXT NOT NULL,
            source_run TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            supersedes TEXT,
            PRIMARY KEY (scope, fact_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        10,
        # Content-addressed artifacts (tether.persistence.artifacts, I9): large values a
        # journal row or snapshot references by SHA-256. A row's bytes are never replaced;
        # touched_at_ms is the last put, which a retention sweep honours. A rowid table:
        # the rows are large.
        """
        CREATE TABLE artifacts (
            digest TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            data BLOB NOT NULL,
            created_at_ms INTEGER NOT NULL,
            touched_at_ms INTEGER NOT NULL
        );
        """,
    ),
    (
        11,
        # The order facts were written in (tether.persistence.facts.FactRow.written): two facts
        # about one subject in the same millisecond are told apart by it, never by their ids.
        # Facts from before it keep 0 and are ordered by id as they were.
        """
        ALTER TABLE memory_facts ADD COLUMN written INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX memory_facts_written ON memory_facts (written);
        """,
    ),
    (
        12,
        # The run views (tether.persistence.views): a feed the turns that change a status
        # append to (the rowid is the feed's position; the projector deletes what it has
        # read but the last row, so positions are never reused), the view and its hourly
        # counters, and the position the projector has reached. Seeded from the index, so a
        # database migrated with runs in it has them in its views at once.
        """
        CREATE TABLE view_feed (
            pos INTEGER PRIMARY KEY,
            execution_id TEXT NOT NULL,
            seq INTEGER NOT NULL
        );
        CREATE TABLE view_position (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pos INTEGER NOT NULL
        );
        INSERT INTO view_position (id, pos) VALUES (1, 0);
        CREATE TABLE run_views (
            execution_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            workflow_version TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            error TEXT
        );
        -- The pages' orders under each filter the dashboard offers.
        CREATE INDEX run_views_created ON run_views (created_at_ms, execution_id);
        CREATE INDEX run_views_status ON run_views (status, created_at_ms, execution_id);
        CREATE INDEX run_views_workflow
            ON run_views (workflow_id, created_at_ms, execution_id);
        CREATE INDEX run_views_workflow_status
            ON run_views (workflow_id, status, created_at_ms, execution_id);
        CREATE TABLE run_counts (
            hour_ms INTEGER NOT NULL,
            workflow_id TEXT NOT NULL,
            status TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (hour_ms, workflow_id, status)
        ) WITHOUT ROWID;
        INSERT INTO run_views
            SELECT execution_id, workflow_id, workflow_version, status, created_at_ms,
                   updated_at_ms, error FROM executions;
        INSERT INTO run_counts
            SELECT created_at_ms - created_at_ms % 3600000, workflow_id, status, COUNT(*)
            FROM executions GROUP BY 1, 2, 3;
        """,
    ),
    (
        13,
        # The same work-item table and guards, with the status tests as chains of equalities.
        # SQLite evaluates `x IN (three or more constants)` by building an ephemeral table
        # (a fresh page, zeroed) each time a statement runs: the CHECK on every insert and
        # status change, the finished-item trigger on every update. That was 12% of a fleet
        # step's instructions (`python -m benchmarks instructions --fleet`). A CHECK cannot be
        # altered in place: the table is rebuilt, rows as they are.
        """
        CREATE TABLE work_items_rebuilt (
            work_item_id TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL,
            node_id TEXT NOT NULL,
            queue TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            dispatch INTEGER NOT NULL,
            payload BLOB NOT NULL,
            status TEXT NOT NULL CHECK (
                status = 'pending' OR status = 'leased' OR status = 'parked'
                OR status = 'completed' OR status = 'failed' OR status = 'dead'
                OR status = 'cancelled'),
            not_before_ms INTEGER NOT NULL,
            lease_owner TEXT,
            lease_expires_ms INTEGER,
            fence INTEGER NOT NULL,
            parks INTEGER NOT NULL,
            last_error TEXT,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        );
        INSERT INTO work_items_rebuilt SELECT * FROM work_items;
        DROP TABLE work_items;
        ALTER TABLE work_items_rebuilt RENAME TO work_items;
        CREATE INDEX work_items_grantable ON work_items
            (queue, not_before_ms, created_at_ms, work_item_id)
            WHERE status IN ('pending', 'parked');
        CREATE INDEX work_items_status ON work_items (status, created_at_ms);
        CREATE INDEX work_items_execution ON work_items (execution_id, created_at_ms);
        CREATE TRIGGER work_items_fence_only_grows BEFORE UPDATE OF fence ON work_items
        WHEN NEW.fence < OLD.fence BEGIN
            SELECT RAISE(ABORT, 'work item fence would decrease');
        END;
        CREATE TRIGGER work_items_terminal_is_final BEFORE UPDATE ON work_items
        WHEN OLD.status = 'completed' OR OLD.status = 'failed' OR OLD.status = 'dead'
            OR OLD.status = 'cancelled' BEGIN
            SELECT RAISE(ABORT, 'work item is finished and cannot change');
        END;
        """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]

_BOOTSTRAP = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"


async def applied_versions(conn: aiosqlite.Connection) -> list[int]:
    """Versions recorded in ``schema_migrations`` (empty if the table does not exist)."""
    exists = await conn.execute_fetchall(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )
    if not list(exists):
        return []
    rows = await conn.execute_fetchall("SELECT version FROM schema_migrations ORDER BY version")
    return [int(r[0]) for r in rows]


def _refuse_newer(where: str, current: int) -> None:
    if current > LATEST_VERSION:
        raise SchemaTooNew(
            f"{where}: database schema is at version {current}, but this Tether knows versions "
            f"up to {LATEST_VERSION}; upgrade Tether (migrations are forward-only)"
        )


async def migrate(conn: aiosqlite.Connection, where: str) -> list[int]:
    """Apply the missing migrations in order; return the versions applied now."""
    await conn.execute(_BOOTSTRAP)
    await conn.commit()
    versions = await applied_versions(conn)
    current = max(versions, default=0)
    _refuse_newer(where, current)
    applied: list[int] = []
    for version, sql in MIGRATIONS:
        if version <= current:
            continue
        script = (
            f"BEGIN IMMEDIATE;\n{sql}\n"
            f"INSERT INTO schema_migrations (version) VALUES ({version});\nCOMMIT;"
        )
        try:
            await conn.executescript(script)
        except sqlite3.Error as exc:
            await conn.rollback()
            raise StorageError(f"{where}: migration {version} failed: {exc}") from exc
        applied.append(version)
    return applied


async def check_version(conn: aiosqlite.Connection, where: str) -> None:
    """For read-only opens: the schema must be exactly the one this code knows."""
    current = max(await applied_versions(conn), default=0)
    _refuse_newer(where, current)
    if current < LATEST_VERSION:
        raise StorageError(
            f"{where}: database schema is at version {current}, expected {LATEST_VERSION}; "
            "open it once for writing to migrate it (a read-only store cannot)"
        )
