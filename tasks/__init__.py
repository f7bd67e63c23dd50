"""Prefect layer: tasks (filled by the incident-core issue)."""
