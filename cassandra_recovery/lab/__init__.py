"""The local lab: a real Cassandra cluster from Maven Central artifacts, PostgreSQL, Prefect and monitoring."""
