"""Typed I/O adapters: nodetool, CQL, JMX metrics, PostgreSQL, Slack, alert payloads."""
