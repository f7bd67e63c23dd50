"""cassandra-recovery: workflow-orchestrated recovery pipelines for Apache Cassandra clusters."""

__version__ = "0.1.0"
