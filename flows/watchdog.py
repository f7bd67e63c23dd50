"""The run watchdog as a deployment of its own, on a schedule: the same pass the resumer inside every `serve`
makes, so incidents whose holder is gone are taken over even where no `serve` runs the resumer thread (a worker
that only runs deployments)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client

from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from deployments import names
from deployments.orphans import watch_incident_runs
from deployments.overdue import page_overdue_repairs_once


@flow(name=names.RUN_WATCHDOG, persist_result=False, result_serializer="json")
def run_watchdog() -> dict[str, list[str]]:
    settings = Settings()
    with get_client(sync_client=True) as client:
        done = watch_incident_runs(client, process_storage(settings).incidents, settings)
    done["paged_repair_age"] = page_overdue_repairs_once(process_storage(settings), settings)
    get_run_logger().info("watchdog: %s", done)
    return done
