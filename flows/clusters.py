"""Which cluster a run acts on: the one its parameters name, else settings' `default_cluster` (never a hard-coded
id, so a production deployment's form is not pre-filled with the lab's)."""

from __future__ import annotations

from cassandra_recovery.settings import Settings


def cluster_named(cluster_id: str | None) -> str:
    """`cluster_id`, or settings' default when it is empty. Not looked up here: the steps that reach the cluster
    do, and an incident's bookkeeping (a follow-up, a deferral) works for any cluster id it was opened with."""
    return cluster_id or Settings().default_cluster
