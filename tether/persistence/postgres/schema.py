"""The Postgres schema as numbered, forward-only migrations.

Tables live in the connection's current schema (the first of its ``search_path``) and carry a
``tether_`` prefix, so a database shared with an application keeps Tether's tables apart. Ids are
``COLLATE "C"``: they sort by code point, as in the other backends, whatever the database's
collation.
Each migration is ``(version, SQL)``; versions only grow and a released migration is never
edited (add a new one). ``migrate`` applies the missing ones in order, each in its own
transaction with its row in ``tether_schema_migrations``, so a crash mid-migration leaves the
database at the previous version. A database migrated by a newer Tether is refused.

Example::

    applied = await migrate(conn, "postgresql://db/tether")   # [1, 2, 3, 4, 5] when fresh
"""

from __future__ import annotations

import psycopg

from tether.persistence.contract import SchemaTooNew, StorageError
from tether.persistence.postgres.connection import Conn

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        # Checksums are CRC-32 (unsigned 32 bits): bigint holds them, integer would not.
        """
        CREATE TABLE tether_journal (
            execution_id text COLLATE "C" NOT NULL,
            seq bigint NOT NULL,
            type text NOT NULL,
            payload bytea NOT NULL,
            checksum bigint NOT NULL,
            PRIMARY KEY (execution_id, seq)
        );
        CREATE TABLE tether_snapshots (
            execution_id text COLLATE "C" NOT NULL,
            seq bigint NOT NULL,
            payload bytea NOT NULL,
            checksum bigint NOT NULL,
            PRIMARY KEY (execution_id, seq)
        );
        -- Keep the two newest snapshots per execution (the older one stays for inspection
        -- when the newest fails its checksum), as the SQLite store does.
        CREATE FUNCTION tether_snapshots_keep_two() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM tether_snapshots
             WHERE execution_id = NEW.execution_id
               AND seq < (SELECT seq FROM tether_snapshots
                          WHERE execution_id = NEW.execution_id
                          ORDER BY seq DESC LIMIT 1 OFFSET 1);
            RETURN NULL;
        END $$;
        CREATE TRIGGER tether_snapshots_keep_two AFTER INSERT ON tether_snapshots
            FOR EACH ROW EXECUTE FUNCTION tether_snapshots_keep_two();
        """,
    ),
    (
        2,
        # passive_seq: the execution is passivated while passive_seq = last_seq (a later turn
        # moves last_seq on, so the mark never needs clearing on the step path).
        """
        CREATE TABLE tether_executions (
            execution_id text COLLATE "C" PRIMARY KEY,
            workflow_id text COLLATE "C" NOT NULL,
            workflow_version text COLLATE "C" NOT NULL,
            status text NOT NULL,
            created_at_ms bigint NOT NULL,
            updated_at_ms bigint NOT NULL,
            last_seq bigint NOT NULL,
            error text,
            passive_seq bigint,
            wake_at_ms bigint
        );
        CREATE INDEX tether_executions_status ON tether_executions (status, created_at_ms);
        CREATE INDEX tether_executions_created ON tether_executions (created_at_ms);
        CREATE INDEX tether_executions_workflow
            ON tether_executions (workflow_id, created_at_ms);
        CREATE INDEX tether_executions_wake ON tether_executions (wake_at_ms, execution_id)
            WHERE wake_at_ms IS NOT NULL;
        """,
    ),
    (
        3,
        # registered: registration order, the tie-break of "the most recently registered".
        """
        CREATE TABLE tether_workflows (
            workflow_id text COLLATE "C" NOT NULL,
            version text COLLATE "C" NOT NULL,
            ir bytea NOT NULL,
            created_at_ms bigint NOT NULL,
            registered bigint GENERATED ALWAYS AS IDENTITY,
            PRIMARY KEY (workflow_id, version)
        );
        """,
    ),
    (
        4,
        # Work items and their leases (I5); the triggers refuse what I5 forbids whatever the
        # writer's checks say: a fence never decreases, a finished item never changes again.
        """
        CREATE TABLE tether_work_items (
            work_item_id text COLLATE "C" PRIMARY KEY,
            execution_id text COLLATE "C" NOT NULL,
            node_id text COLLATE "C" NOT NULL,
            queue text COLLATE "C" NOT NULL,
            attempt bigint NOT NULL,
            dispatch bigint NOT NULL,
            payload bytea NOT NULL,
            status text NOT NULL CHECK (status IN ('pending', 'leased', 'parked', 'completed',
                                                   'failed', 'dead', 'cancelled')),
            not_before_ms bigint NOT NULL,
            lease_owner text,
            lease_expires_ms bigint,
            fence bigint NOT NULL,
            parks bigint NOT NULL,
            last_error text,
            created_at_ms bigint NOT NULL,
            updated_at_ms bigint NOT NULL
        );
        -- Partial: a backlog of finished items costs a grant nothing.
        CREATE INDEX tether_work_items_grantable ON tether_work_items
            (queue, not_before_ms, created_at_ms, work_item_id)
            WHERE status IN ('pending', 'parked');
        CREATE INDEX tether_work_items_status ON tether_work_items (status, created_at_ms);
        CREATE INDEX tether_work_items_execution
            ON tether_work_items (execution_id, created_at_ms);
        CREATE FUNCTION tether_work_items_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status IN ('completed', 'failed', 'dead', 'cancelled') THEN
                RAISE EXCEPTION 'work item % is finished and cannot change', OLD.work_item_id;
            END IF;
            IF NEW.fence < OLD.fence THEN
                RAISE EXCEPTION 'work item % fence would decrease', OLD.work_item_id;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER tether_work_items_guard BEFORE UPDATE ON tether_work_items
            FOR EACH ROW EXECUTE FUNCTION tether_work_items_guard();
        """,
    ),
    (
        5,
        # Cron schedules: the engine keeps them in memory and reads the table when it starts.
        """
        CREATE TABLE tether_schedules (
            schedule_id text COLLATE "C" PRIMARY KEY,
            cron text NOT NULL,
            timezone text NOT NULL,
            workflow_id text COLLATE "C" NOT NULL,
            workflow_version text COLLATE "C" NOT NULL,
            input bytea NOT NULL,
            missed text NOT NULL CHECK (missed IN ('skip', 'run_once')),
            paused boolean NOT NULL,
            next_fire_ms bigint NOT NULL,
            created_at_ms bigint NOT NULL,
            updated_at_ms bigint NOT NULL,
            last_error text
        );
        """,
    ),
    (
        6,
        # The audit log (tether.persistence.audit_chain), as in SQLite's migration 8: each
        # journal row's chain link (NULL for rows written before), and the signed heads.
        """
        ALTER TABLE tether_journal ADD COLUMN chain bytea;
        CREATE TABLE tether_audit_signatures (
            execution_id text COLLATE "C" NOT NULL,
            seq bigint NOT NULL,
            chain bytea NOT NULL,
            key_id text COLLATE "C" NOT NULL,
            signature bytea NOT NULL,
            signed_at_ms bigint NOT NULL,
            proof bytea NOT NULL,
            PRIMARY KEY (execution_id, seq, key_id)
        );
        """,
    ),
    (
        7,
        # Durable memory (tether.agents.memory): facts per scope (user or tenant), written
        # once per (scope, fact_id) and read per scope only, so the key leads with the scope.
        """
        CREATE TABLE tether_memory_facts (
            scope text COLLATE "C" NOT NULL,
            fact_id text COLLATE "C" NOT NULL,
            subject text NOT NULL,
            content text NOT NULL,
            source_run text COLLATE "C" NOT NULL,
            at_ms bigint NOT NULL,
            supersedes text COLLATE "C",
            PRIMARY KEY (scope, fact_id)
        );
        """,
    ),
    (
        8,
        # Content-addressed artifacts (tether.persistence.artifacts, I9), as in SQLite's
        # migration 10: bytes never replaced, touched_at_ms the last put.
        """
        CREATE TABLE tether_artifacts (
            digest text COLLATE "C" PRIMARY KEY,
            size bigint NOT NULL,
            data bytea NOT NULL,
            created_at_ms bigint NOT NULL,
            touched_at_ms bigint NOT NULL
        );
        """,
    ),
    (
        9,
        # The order facts were written in (tether.persistence.facts.FactRow.written), from a
        # sequence, so engines sharing the database never hand out one number twice.
        """
        ALTER TABLE tether_memory_facts ADD COLUMN written bigint GENERATED BY DEFAULT AS IDENTITY;
        """,
    ),
    (
        10,
        # The run views (tether.persistence.views), as in SQLite's migration 10. Commit
        # order is not sequence order here by itself: a transaction that writes feed rows
        # takes a transaction-level lock first (view_ops.append_feed), so feed positions
        # become visible in their order and the projector never passes a row committed late.
        """
        CREATE TABLE tether_view_feed (
            pos bigserial PRIMARY KEY,
            execution_id text COLLATE "C" NOT NULL,
            seq bigint NOT NULL
        );
        CREATE TABLE tether_view_position (
            id integer PRIMARY KEY CHECK (id = 1),
            pos bigint NOT NULL
        );
        INSERT INTO tether_view_position (id, pos) VALUES (1, 0);
        CREATE TABLE tether_run_views (
            execution_id text COLLATE "C" PRIMARY KEY,
            workflow_id text COLLATE "C" NOT NULL,
            workflow_version text COLLATE "C" NOT NULL,
            status text COLLATE "C" NOT NULL,
            created_at_ms bigint NOT NULL,
            updated_at_ms bigint NOT NULL,
            error text
        );
        CREATE INDEX tether_run_views_created ON tether_run_views (created_at_ms, execution_id);
        CREATE INDEX tether_run_views_status
            ON tether_run_views (status, created_at_ms, execution_id);
        CREATE INDEX tether_run_views_workflow
            ON tether_run_views (workflow_id, created_at_ms, execution_id);
        CREATE INDEX tether_run_views_workflow_status
            ON tether_run_views (workflow_id, status, created_at_ms, execution_id);
        CREATE TABLE tether_run_counts (
            hour_ms bigint NOT NULL,
            workflow_id text COLLATE "C" NOT NULL,
            status text COLLATE "C" NOT NULL,
            n bigint NOT NULL,
            PRIMARY KEY (hour_ms, workflow_id, status)
        );
        INSERT INTO tether_run_views
            SELECT execution_id, workflow_id, workflow_version, status, created_at_ms,
                   updated_at_ms, error FROM tether_executions;
        INSERT INTO tether_run_counts
            SELECT created_at_ms - created_at_ms % 3600000, workflow_id, status, COUNT(*)
            FROM tether_executions GROUP BY 1, 2, 3;
        """,
    ),
    (
        11,
        # Several engines on one schema (tether.persistence.ownership): each engine's liveness
        # (one row, renewed in one statement), each execution's owner and fence, and the
        # inbox through which a signal sent to one engine reaches the owner of its run.
        """
        CREATE TABLE tether_engines (
            engine_id text COLLATE "C" PRIMARY KEY,
            started_ms bigint NOT NULL,
            expires_ms bigint NOT NULL
        );
        CREATE TABLE tether_owners (
            execution_id text COLLATE "C" PRIMARY KEY,
            engine_id text COLLATE "C" NOT NULL,
            fence bigint NOT NULL
        );
        CREATE INDEX tether_owners_engine ON tether_owners (engine_id, execution_id);
        CREATE FUNCTION tether_owners_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.fence < OLD.fence THEN
                RAISE EXCEPTION 'execution % ownership fence would decrease', OLD.execution_id;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER tether_owners_guard BEFORE UPDATE ON tether_owners
            FOR EACH ROW EXECUTE FUNCTION tether_owners_guard();
        CREATE TABLE tether_inbox (
            message_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            execution_id text COLLATE "C" NOT NULL,
            sender text COLLATE "C" NOT NULL,
            body bytea NOT NULL,
            created_ms bigint NOT NULL,
            answer bytea
        );
        CREATE INDEX tether_inbox_open ON tether_inbox (execution_id, message_id)
            WHERE answer IS NULL;
        """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]

_BOOTSTRAP = """
    CREATE TABLE IF NOT EXISTS tether_schema_migrations (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""


async def applied_versions(conn: Conn) -> list[int]:
    """Versions in ``tether_schema_migrations`` (empty when the table does not exist)."""
    cur = await conn.execute("SELECT to_regclass('tether_schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return []
    cur = await conn.execute("SELECT version FROM tether_schema_migrations ORDER BY version")
    return [int(r[0]) for r in await cur.fetchall()]


def _refuse_newer(where: str, current: int) -> None:
    if current > LATEST_VERSION:
        raise SchemaTooNew(
            f"{where}: database schema is at version {current}, but this Tether knows versions "
            f"up to {LATEST_VERSION}; upgrade Tether (migrations are forward-only)"
        )


async def migrate(conn: Conn, where: str) -> list[int]:
    """Apply the missing migrations in order; return the versions applied now.

    ``conn`` is not in autocommit mode; the caller holds the writer lock, so no other engine
    migrates the same schema at the same time.
    """
    await conn.execute(_BOOTSTRAP)
    await conn.commit()
    current = max(await applied_versions(conn), default=0)
    _refuse_newer(where, current)
    applied: list[int] = []
    for version, sql in MIGRATIONS:
        if version <= current:
            continue
        try:
            await conn.execute(sql)  # no parameters: several statements in one go
            await conn.execute(
                "INSERT INTO tether_schema_migrations (version) VALUES (%s)", (version,)
            )
            await conn.commit()
        except psycopg.Error as exc:
            await conn.rollback()
            raise StorageError(f"{where}: migration {version} failed: {exc}") from exc
        applied.append(version)
    return applied


async def check_version(conn: Conn, where: str) -> None:
    """For read-only opens: the schema must be exactly the one this code knows."""
    current = max(await applied_versions(conn), default=0)
    _refuse_newer(where, current)
    if current < LATEST_VERSION:
        raise StorageError(
            f"{where}: database schema is at version {current}, expected {LATEST_VERSION}; "
            "open it once for writing to migrate it (a read-only store cannot)"
        )
