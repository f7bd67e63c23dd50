"""Flow that drains the degraded-mode write queue into Cassandra (recovery phase, after the cluster heals)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from tasks.queue import drain_queue, queue_status


@flow(name="drain-write-queue", result_serializer="json")
def drain_write_queue(cluster_id: str = "lab", timeout_s: float = 300.0) -> dict[str, Any]:
    log = get_run_logger()
    before = queue_status(cluster_id)
    log.info("queue before drain: %s queued, %s dead", before["queued"], before["dead"])
    result = drain_queue(cluster_id, timeout_s)
    log.info(
        "queue after drain: %s queued, %s dead, %s delivered this run",
        result["queued"],
        result["dead"],
        result["run"]["delivered"],
    )
    if not result["drained"]:
        raise RuntimeError(f"write queue of {cluster_id} not drained within {timeout_s}s: {result['queued']} left")
    return result
