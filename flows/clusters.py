"""Which cluster a run acts on: the one its parameters name, else settings' `default_cluster` (never a hard-coded
id, so a production deployment's form is not pre-filled with the lab's)."""

from __future__ import annotations

from cassandra_recovery.settings import Settings


def cluster_named(cluster_id: str | None) -> str:
    """The registered cluster's id; ConfigError names the registered ones when `cluster_id` is unknown."""
    return Settings().cluster(cluster_id or None).id
