"""Alembic environment: the connection (already holding the schema lock), version table and names come from
`config.attributes`, set by cassandra_recovery.storage.migrate; there is no alembic.ini and no offline mode."""

from alembic import context

attrs = context.config.attributes
if "connection" not in attrs:
    raise RuntimeError("run migrations with `cassandra-recovery db upgrade`, not the alembic command")
context.configure(
    connection=attrs["connection"],
    version_table=attrs["version_table"],
    transactional_ddl=True,  # PostgreSQL: a failed revision leaves nothing half done
)
with context.begin_transaction():
    context.run_migrations()
