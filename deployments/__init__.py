"""Prefect layer: the served deployments, their names, and the library's orchestrator on Prefect."""
