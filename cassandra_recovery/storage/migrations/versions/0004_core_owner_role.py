"""Core: the migration role owns every table and function, the runtime role gets only what the processes use.

The incident timeline (`{prefix}_events`) is append-only by a trigger; whoever owns the table can disable or
drop that trigger, or drop its function. So the role that runs `db upgrade` (settings.postgres.migration_user)
takes over the tables (their indexes and serial sequences follow) and the guard function, and the runtime role
is granted SELECT and INSERT on the timeline, SELECT, INSERT and UPDATE on the fenced `side_effects` log (runs
close their own entries; nothing deletes one) and the DML it uses elsewhere. Default privileges give it the same
DML on tables this role creates later: a later append-only table revokes what it must not have.

One role for both (no migration_user, or the same as user): nothing changes and `db upgrade` says the guard is
owned by the runtime role. An install that splits its roles after this revision ran steps its version back and
runs it again (docs/postgres-roles.md).

Revision ID: 0004_core_owner_role
Revises: 0003_core_inbox_claim
"""

from cassandra_recovery.storage.ddl import execute, hand_over, names, runtime_role, version_table

revision = "0004_core_owner_role"
down_revision = "0003_core_inbox_claim"
branch_labels = None
depends_on = None

DML = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
APPEND_ONLY = "SELECT, INSERT"
FENCED_LOG = "SELECT, INSERT, UPDATE"  # an entry is opened, then closed once; never deleted
FIXED = (
    "maintenance_windows", "automation_kill_switch", "repair_pauses", "repair_schedule_log", "repair_runs",
    "repair_segments", "region_views",
)  # fmt: skip
DEFAULTS = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO {r};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r};
"""


def upgrade() -> None:
    runtime = runtime_role()
    if runtime is None:
        return
    p = names().incident_prefix
    tables = {f"{p}s": DML, f"{p}_events": APPEND_ONLY, f"{p}_reports": DML, names().inbox: DML}
    tables |= {t: DML for t in FIXED} | {"side_effects": FENCED_LOG}
    tables[version_table()] = "SELECT"  # processes check the version at start; only `db upgrade` moves it
    hand_over(runtime, tables, functions=(f"{p}_events_append_only",))
    execute(DEFAULTS, r=runtime)


def downgrade() -> None:
    raise NotImplementedError("the project migrates forward only")
