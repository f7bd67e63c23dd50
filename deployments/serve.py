"""The project's deployments, served by one long-lived process (`cassandra-recovery serve`)."""

from __future__ import annotations

from typing import Any

INCIDENT_DEPLOYMENT = "incident-response/incident-response"


def build_deployments() -> list[Any]:
    from flows.assess import assess
    from flows.detect import detect
    from flows.incident import incident_response
    from flows.queue import drain_write_queue
    from flows.recover import repair
    from flows.verify import follow_up_verification, verify

    return [
        # One incident run at a time per deployment; the incident lease makes it one per cluster too.
        incident_response.to_deployment(name="incident-response", tags=["cassandra-recovery"]),
        detect.to_deployment(name="detect", tags=["cassandra-recovery"]),
        assess.to_deployment(name="assess", tags=["cassandra-recovery"]),
        drain_write_queue.to_deployment(name="drain-write-queue", tags=["cassandra-recovery"]),
        repair.to_deployment(name="repair", tags=["cassandra-recovery"]),
        verify.to_deployment(name="verify", tags=["cassandra-recovery"]),
        follow_up_verification.to_deployment(name="follow-up-verification", tags=["cassandra-recovery"]),
    ]


def serve_all(limit: int = 4, max_resumes: int = 2) -> None:
    from prefect import serve

    from deployments.resume import start_resumer

    stop = start_resumer(max_resumes=max_resumes)
    try:
        serve(*build_deployments(), limit=limit, pause_on_shutdown=False)
    finally:
        stop.set()
