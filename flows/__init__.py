"""Prefect layer: flows (filled by the incident-core issue)."""
