"""Core: fencing made visible. Repair checkpoints carry the run (holder) and fencing token that last wrote them,
and every side effect of a run on the cluster is logged with its run, token and interval (`side_effects`), so a
test or a post-mortem can show that no two runs acted at once.

Adding nullable columns with no default rewrites nothing; rows from before keep NULLs (written unfenced).

Revision ID: 0002_core_fencing
Revises: 0001_core
"""

from cassandra_recovery.storage.ddl import execute

revision = "0002_core_fencing"
down_revision = "0001_core"
branch_labels = None
depends_on = None

DDL = """
ALTER TABLE repair_runs ADD COLUMN IF NOT EXISTS owner text, ADD COLUMN IF NOT EXISTS owner_token bigint;
ALTER TABLE repair_segments ADD COLUMN IF NOT EXISTS holder text, ADD COLUMN IF NOT EXISTS fencing_token bigint;
CREATE TABLE IF NOT EXISTS side_effects (
    id            bigserial PRIMARY KEY,
    incident_id   text CHECK (length(incident_id) BETWEEN 1 AND 128),
    holder        text NOT NULL CHECK (length(holder) BETWEEN 1 AND 256),
    fencing_token bigint,
    action        text NOT NULL CHECK (action ~ '^[a-z_]{1,64}$'),
    target        jsonb NOT NULL DEFAULT '{}'::jsonb,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at      timestamptz,
    outcome       text,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK ((incident_id IS NULL) = (fencing_token IS NULL)),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX IF NOT EXISTS side_effects_by_incident ON side_effects (incident_id, started_at);
CREATE INDEX IF NOT EXISTS side_effects_open ON side_effects (incident_id) WHERE ended_at IS NULL;
"""


def upgrade() -> None:
    execute(DDL)


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
