"""The library's one door to the workflow engine: start, follow and serve runs without importing it.

The library never imports Prefect or the Prefect layer (flows, tasks, deployments; checked by `lint-imports`). What
the CLI, the detector and the alert receiver need from the engine goes through `Orchestrator`, and the
implementation is chosen by configuration (`orchestrator`, default `prefect`) among those the installed packages
register under the `cassandra_recovery.orchestrators` entry-point group (see plugins.py); Prefect's lives in
`deployments/orchestrator.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cassandra_recovery import plugins
from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.settings import Settings


class DeploymentMissing(RecoveryError):
    """The deployment is not registered on the server: `cassandra-recovery serve` registers and runs them."""


class EngineUnavailable(RecoveryError):
    """The run could not be started (server away, authentication refused, ...); retry later."""


@dataclass(frozen=True)
class StartedRun:
    id: str
    name: str


@dataclass(frozen=True)
class FinishedRun:
    state: str  # COMPLETED, FAILED, CRASHED or CANCELLED
    message: str | None
    result: Any  # the flow's result when COMPLETED


class Orchestrator(Protocol):
    def serve(self, limit: int) -> None:
        """Register and run every deployment in this process until interrupted."""

    def run_detect(self, cluster_id: str) -> Any:
        """The detect flow, run here and now; its result."""

    def run_assess(self, cluster_id: str) -> Any:
        """The assess flow, run here and now; its result."""

    def run_repair(self, params: Mapping[str, Any]) -> Any:
        """The repair flow, run here and now with `params`; its report."""

    def run_verify(self, params: Mapping[str, Any]) -> Any:
        """The verify flow (retries of an unproven pass, the fix and the pass after it), run here with `params`."""

    def incident_ready(self) -> bool:
        """Whether the incident-response deployment is registered (a `serve` process has started)."""

    def start_incident(
        self, parameters: Mapping[str, Any], idempotency_key: str | None = None, *, when: datetime | None = None
    ) -> StartedRun:
        """A run of the incident-response deployment, not waited for. Raises DeploymentMissing or
        EngineUnavailable."""

    def resume_run(self, run_id: str, run_input: Mapping[str, Any]) -> None:
        """Resume a suspended run with the answer it waits for. Raises EngineUnavailable when it could not (the
        server away, or the run not suspended any more)."""

    def follow(self, run: StartedRun, timeout_s: float, say: Callable[[str], None]) -> FinishedRun | None:
        """Wait for the run to end, saying each new state; None when `timeout_s` passed first."""


def load_orchestrator(settings: Settings) -> Orchestrator:
    """The implementation registered under the `orchestrator` setting, built for these settings (the Prefect one
    points this process's Prefect client at the project's server, before Prefect is first imported)."""
    impl: Any = plugins.load(plugins.ORCHESTRATORS, settings.orchestrator, "orchestrator")
    orchestrator: Orchestrator = impl(settings)
    return orchestrator
