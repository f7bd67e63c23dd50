"""Alembic migrations of the project's PostgreSQL tables (run by `cassandra-recovery db upgrade`)."""
