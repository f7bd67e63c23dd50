"""Prefect layer: flows. Each persists its result as JSON, never pickle (see tasks/__init__.py)."""
