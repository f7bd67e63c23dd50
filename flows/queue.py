"""Flow that drains the degraded-mode write queue into Cassandra (recovery phase, after the cluster heals).

"Drained" means every entry committed before the flow started is delivered (or dead, and reported): writes that
keep arriving meanwhile are the relay's ordinary work, so sustained traffic cannot keep the flow from finishing."""

from __future__ import annotations

from prefect import flow, get_run_logger

from cassandra_recovery.contracts import QueueDrainDoc
from deployments import names
from flows.clusters import cluster_named
from tasks.queue import drain_queue, queue_status, queue_watermark


@flow(name=names.DRAIN_WRITE_QUEUE, result_serializer="json")
def drain_write_queue(cluster_id: str | None = None, timeout_s: float = 300.0) -> QueueDrainDoc:
    cluster_id = cluster_named(cluster_id)
    log = get_run_logger()
    mark = queue_watermark(cluster_id)
    before = queue_status(cluster_id)
    log.info("queue before drain: %s queued, %s dead", before["queued"], before["dead"])
    result = drain_queue(cluster_id, timeout_s, mark)
    if result["backlog"]["dead"]:
        log.warning("%s entries committed before this drain are dead: `queue replay-dead`", result["backlog"]["dead"])
    log.info(
        "queue after drain: %s queued, %s dead, %s delivered this run",
        result["queued"],
        result["dead"],
        result["run"]["delivered"],
    )
    if not result["drained"]:
        raise RuntimeError(
            f"write queue of {cluster_id} not drained within {timeout_s}s: {result['backlog']['queued']} entries"
            " committed before it started are still queued"
        )
    return result
