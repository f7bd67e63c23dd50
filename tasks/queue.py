"""Thin Prefect tasks over the write queue: identifiers in, plain dicts out."""

from __future__ import annotations

from typing import Any

from prefect import task

from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import pg_parts, service_parts


@task(name="queue-status", retries=2, retry_delay_seconds=[2, 10])
def queue_status(cluster_id: str) -> dict[str, Any]:
    pg = pg_parts(Settings(), cluster_id)
    try:
        return {"cluster": cluster_id, **pg.outbox.stats().as_dict()}
    finally:
        pg.close()


@task(name="drain-write-queue", retries=2, retry_delay_seconds=[5, 30])
def drain_queue(cluster_id: str, timeout_s: float) -> dict[str, Any]:
    """Deliver queued cache updates; idempotent (versioned writes), so a retry is always safe."""
    parts = service_parts(Settings(), cluster_id)
    try:
        stats, report = parts.relay.drain(timeout_s=timeout_s)
        return {"cluster": cluster_id, "drained": stats.queued == 0, **stats.as_dict(), "run": report.as_dict()}
    finally:
        parts.close()
