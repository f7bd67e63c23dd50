"""Prefect layer: deployments (filled by the incident-core issue)."""
