"""Core baseline: adopts every install made before migrations existed, complete or partial.

Each table is created only when missing, with the shape the last schema-at-the-call-site commit (09d098a)
gave it; tables that old installs have keep their rows. The incidents' state CHECK made before `monitoring`
existed is replaced (the only ALTER the call sites ever ran). Frozen: later changes are new revisions.

Revision ID: 0001_core
Revises:
"""

from psycopg import sql

from cassandra_recovery.storage.ddl import execute, names, scalar

revision = "0001_core"
down_revision = None
branch_labels = ("core",)
depends_on = None

# The incident states as of this revision (logic/incident_states.py); a new state needs a new revision.
STATES = ("detected", "assessing", "mitigating", "recovering", "verifying", "monitoring", "resolved", "escalated")

INCIDENTS = """
CREATE TABLE IF NOT EXISTS {inc} (
    id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128), state text NOT NULL CHECK (state IN ({states})),
    cluster_id text NOT NULL CHECK (length(cluster_id) BETWEEN 1 AND 128),
    opened_at timestamptz NOT NULL DEFAULT clock_timestamp(), updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    closed_at timestamptz, trigger jsonb NOT NULL, plan jsonb, slack_channel text, slack_ts text,
    lease_holder text, lease_run_key text, lease_expires_at timestamptz,
    fencing_token bigint NOT NULL DEFAULT 0, version integer NOT NULL DEFAULT 1,
    CHECK ((state = 'resolved') = (closed_at IS NOT NULL)), CHECK ((lease_holder IS NULL) = (lease_expires_at IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS {open_idx} ON {inc} (cluster_id) WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS {ev} (
    seq bigserial PRIMARY KEY, incident_id text NOT NULL REFERENCES {inc} (id),
    at timestamptz NOT NULL DEFAULT clock_timestamp(), kind text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    actor text NOT NULL CHECK (length(actor) BETWEEN 1 AND 256), fencing_token bigint, data jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS {ev_idx} ON {ev} (incident_id, seq);
CREATE TABLE IF NOT EXISTS {rep} (
    incident_id text NOT NULL REFERENCES {inc} (id), version serial, created_at timestamptz NOT NULL DEFAULT
    clock_timestamp(), markdown text NOT NULL, PRIMARY KEY (incident_id, version)
);
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION
    'table % is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation'; END $$;
CREATE OR REPLACE TRIGGER {trg_row} BEFORE UPDATE OR DELETE ON {ev} FOR EACH ROW EXECUTE FUNCTION {fn}();
CREATE OR REPLACE TRIGGER {trg_trunc} BEFORE TRUNCATE ON {ev} FOR EACH STATEMENT EXECUTE FUNCTION {fn}();
"""
# Tables made before `monitoring` existed keep their old CHECK under the same name: replaced when it lacks it.
STATE_CHECK = """SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
WHERE t.oid = to_regclass({inc_name}) AND c.conname = {check_name}"""
REPLACE_CHECK = """ALTER TABLE {inc} DROP CONSTRAINT {state_check},
    ADD CONSTRAINT {state_check} CHECK (state IN ({states}))"""

INBOX = """
CREATE TABLE IF NOT EXISTS {t} (
    id bigserial PRIMARY KEY,
    dedup_key text NOT NULL CHECK (length(dedup_key) BETWEEN 1 AND 200),
    launch_key text NOT NULL,
    source text NOT NULL,
    cluster_id text NOT NULL,
    alert_status text NOT NULL CHECK (alert_status IN ('firing', 'resolved')),
    state text NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'delivered', 'recorded', 'dead')),
    doc jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_error text,
    incident_id text,
    flow_run_id text,
    done_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS {uq} ON {t} (dedup_key);
CREATE INDEX IF NOT EXISTS {due} ON {t} (next_attempt_at) WHERE state = 'received';
"""

# Fixed names. Another name set in the same database (tests) runs these again: they must stay idempotent.
MAINTENANCE_WINDOWS = """
CREATE TABLE IF NOT EXISTS maintenance_windows (
    id         bigserial PRIMARY KEY,
    cluster_id text NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason     text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by text NOT NULL
);
CREATE INDEX IF NOT EXISTS maintenance_windows_cluster_idx ON maintenance_windows (cluster_id, ends_at);
"""
KILL_SWITCH = """
CREATE TABLE IF NOT EXISTS automation_kill_switch (
    cluster_id text PRIMARY KEY,
    stopped    boolean NOT NULL,
    reason     text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    set_by     text NOT NULL,
    since      timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""
REPAIR_PAUSES = """
CREATE TABLE IF NOT EXISTS repair_pauses (
    cluster_id  text PRIMARY KEY,
    reason      text NOT NULL,
    incident_id text,
    set_by      text NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);
"""
REPAIR_SCHEDULE_LOG = """
CREATE TABLE IF NOT EXISTS repair_schedule_log (
    id          bigserial PRIMARY KEY,
    schedule    text NOT NULL,
    cluster_id  text NOT NULL,
    kind        text NOT NULL,
    run_key     text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    outcome     text NOT NULL CHECK (outcome IN ('started', 'done', 'skipped', 'escalated')),
    reason      text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS repair_schedule_log_cluster_idx ON repair_schedule_log (cluster_id, at);
"""
REPAIR_CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS repair_runs (
    run_key     text PRIMARY KEY,
    cluster_id  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('full', 'incremental')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text
);
CREATE TABLE IF NOT EXISTS repair_segments (
    run_key     text NOT NULL REFERENCES repair_runs (run_key) ON DELETE CASCADE,
    seq         int NOT NULL,
    keyspace    text NOT NULL,
    start_token bigint NOT NULL,
    end_token   bigint NOT NULL,
    replicas    text[] NOT NULL,
    coordinator text NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts    int NOT NULL DEFAULT 0,
    started_at  timestamptz,
    finished_at timestamptz,
    parent_id   text,
    last_error  text,
    PRIMARY KEY (run_key, seq)
);
"""
REGION_VIEWS = """
CREATE TABLE IF NOT EXISTS region_views (
    cluster_id  text NOT NULL,
    dc          text NOT NULL CHECK (length(dc) BETWEEN 1 AND 64),
    observed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    reporter    text NOT NULL,
    view        jsonb NOT NULL,
    PRIMARY KEY (cluster_id, dc)
);
"""


def _incidents(prefix: str) -> None:
    inc = f"{prefix}s"
    states = sql.SQL(", ").join(sql.Literal(s) for s in STATES)
    execute(
        INCIDENTS,
        inc=inc,
        ev=f"{prefix}_events",
        rep=f"{prefix}_reports",
        open_idx=f"{inc}_open_cluster_uq",
        ev_idx=f"{prefix}_events_incident_idx",
        fn=f"{prefix}_events_append_only",
        trg_row=f"{prefix}_events_no_change",
        trg_trunc=f"{prefix}_events_no_truncate",
        states=states,
    )
    current = scalar(STATE_CHECK, inc_name=sql.Literal(inc), check_name=sql.Literal(f"{inc}_state_check"))
    if current is not None and "'monitoring'" not in current:
        execute(REPLACE_CHECK, inc=inc, state_check=f"{inc}_state_check", states=states)


def upgrade() -> None:
    n = names()
    _incidents(n.incident_prefix)
    execute(INBOX, t=n.inbox, uq=f"{n.inbox}_dedup_uq", due=f"{n.inbox}_due_idx")
    for ddl in (MAINTENANCE_WINDOWS, KILL_SWITCH, REPAIR_PAUSES, REPAIR_SCHEDULE_LOG, REPAIR_CHECKPOINTS, REGION_VIEWS):
        execute(ddl)


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
