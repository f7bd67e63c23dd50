"""Thin Prefect tasks over the write queue: identifiers in, plain dicts out."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.contracts import BacklogDoc, CompareWithQueueDoc, QueueDrainDoc, QueueStatusDoc
from cassandra_recovery.degraded.compare import Comparer
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from cassandra_recovery.wiring import PgParts, ServiceParts, pg_parts, process_cql, service_parts


def _pg(cluster_id: str) -> PgParts:
    """The domain's stores over the process's pool (closing them leaves the pool open)."""
    settings = Settings()
    return pg_parts(settings, cluster_id, pool=process_storage(settings).pool)


def _service(cluster_id: str) -> ServiceParts:
    """The order service over the process's pool and Cassandra client (closing it leaves both open)."""
    settings = Settings()
    cql = process_cql(settings.cluster(cluster_id))
    return service_parts(settings, cluster_id, pg=_pg(cluster_id), cql=cql)


@task(name="queue-status", retries=2, retry_delay_seconds=[2, 10], result_serializer="json")
def queue_status(cluster_id: str) -> QueueStatusDoc:
    pg = _pg(cluster_id)
    try:
        return {"cluster": cluster_id, **pg.outbox.stats().as_dict()}
    finally:
        pg.close()


@task(name="queue-watermark", retries=2, retry_delay_seconds=[2, 10], result_serializer="json")
def queue_watermark(cluster_id: str) -> str:
    """The queue's position now; a retried run gets its first watermark back (cached), a subset of any later one."""
    pg = _pg(cluster_id)
    try:
        return pg.outbox.watermark()
    finally:
        pg.close()


@task(name="drain-write-queue", retries=2, retry_delay_seconds=[5, 30], result_serializer="json")
def drain_queue(cluster_id: str, timeout_s: float, watermark: str) -> QueueDrainDoc:
    """Deliver every cache update committed before `watermark`, even while new writes keep coming; idempotent
    (versioned writes), so a retry is always safe. `drained`: none of them is left queued (dead ones are counted)."""
    parts = _service(cluster_id)
    try:
        left, report = parts.relay.deliver_committed_before(watermark, timeout_s=timeout_s)
        stats = parts.pg.outbox.stats()
        backlog: BacklogDoc = {"queued": left.queued, "dead": left.dead}
        return {"cluster": cluster_id, "drained": left.queued == 0, "backlog": backlog, **stats.as_dict(),
                "run": report.as_dict()}  # fmt: skip
    finally:
        parts.close()


@task(
    name="compare-with-source",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=[10],
    persist_result=False,
    result_serializer="json",
)
def compare_with_source(cluster_id: str, chunks: int = 64) -> CompareWithQueueDoc:
    """The Cassandra cache against PostgreSQL (LOCAL_QUORUM reads), with the queue's state."""

    parts = _service(cluster_id)
    try:
        res = Comparer(parts.pg.pool, parts.cql, parts.pg.settings.domain).run(chunks)
        return {"cluster": cluster_id, **res.as_dict(), "queue": parts.pg.outbox.stats().as_dict()}
    finally:
        parts.close()
