"""The library's `Orchestrator` on Prefect: deployments started by name, flows run in process, `serve`."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cassandra_recovery.lab.prefect_server import client_env
from cassandra_recovery.orchestrator import DeploymentMissing, EngineUnavailable, FinishedRun, StartedRun
from cassandra_recovery.settings import Settings
from deployments.names import INCIDENT_DEPLOYMENT

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class PrefectOrchestrator:
    """Prefect is imported on first use, after this process's client is pointed at the project's server."""

    def __init__(self, settings: Settings):
        os.environ.update(client_env(settings))

    def serve(self, limit: int) -> None:
        from deployments.serve import serve_all

        serve_all(limit=limit)

    def run_detect(self, cluster_id: str) -> Any:
        from flows.detect import detect

        return detect(cluster_id=cluster_id)

    def run_assess(self, cluster_id: str) -> Any:
        from flows.assess import assess

        return assess(cluster_id=cluster_id)

    def run_repair(self, params: Mapping[str, Any]) -> Any:
        from flows.recover import repair

        return repair(**params)

    def run_verify(self, params: Mapping[str, Any]) -> Any:
        from flows.verify import verify

        return verify(**params)

    def resume_run(self, run_id: str, run_input: Mapping[str, Any]) -> None:
        from prefect.flow_runs import resume_flow_run

        try:
            resume_flow_run(uuid.UUID(run_id), run_input=dict(run_input))
        except Exception as e:  # not paused any more, server away, refused: the caller keeps its record and says so
            raise EngineUnavailable(f"run {run_id} not resumed: {type(e).__name__}: {str(e)[:300]}") from e

    def incident_ready(self) -> bool:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name(INCIDENT_DEPLOYMENT)
                return True
            except Exception:
                return False

    def start_incident(
        self, parameters: Mapping[str, Any], idempotency_key: str | None = None, *, when: datetime | None = None
    ) -> StartedRun:
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound

        try:
            run: Any = run_deployment(
                INCIDENT_DEPLOYMENT,
                parameters=dict(parameters),
                timeout=0,
                idempotency_key=idempotency_key,
                scheduled_time=when,
            )
        except ObjectNotFound as e:
            raise DeploymentMissing(f"the deployment {INCIDENT_DEPLOYMENT} is not registered on the server") from e
        except Exception as e:  # unreachable server, authentication: not started, retry later
            raise EngineUnavailable(f"{INCIDENT_DEPLOYMENT} not started: {type(e).__name__}: {str(e)[:300]}") from e
        return StartedRun(str(run.id), str(run.name))

    def follow(self, run: StartedRun, timeout_s: float, say: Callable[[str], None]) -> FinishedRun | None:
        from prefect.client.orchestration import get_client

        deadline = time.monotonic() + timeout_s
        last = None
        with get_client(sync_client=True) as client:
            while True:
                state = client.read_flow_run(uuid.UUID(run.id)).state
                if state is not None and state.name != last:
                    last = state.name
                    say(f"state: {state.name}" + (f" ({state.message})" if state.message else ""))
                if state is not None and state.type.value in TERMINAL:
                    done = state.type.value == "COMPLETED"
                    return FinishedRun(state.type.value, state.message, state.result() if done else None)
                if time.monotonic() > deadline:
                    return None
                time.sleep(1)
