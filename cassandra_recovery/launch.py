"""The one way a confirmed outage becomes an incident run, shared by the detector and the alert receiver: open or
join the cluster's incident, mitigate first when this call opened it (confirmation and mitigation in the same
round, before any run exists), and start the incident deployment under an idempotency key.

Each step is idempotent on a retry (the incident is joined, the key is the same), so a caller that fails half-way
keeps its trigger and offers it again. Who calls and how it retries stays the caller's: the detector keeps the
trigger in its loop, the receiver in its PostgreSQL inbox."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cassandra_recovery.incident.store import Incident, IncidentStore
from cassandra_recovery.logic.escalated import join_page_key
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.mitigation.apply import MitigationStores, mitigate_opened_incident
from cassandra_recovery.orchestrator import Orchestrator
from cassandra_recovery.paging import page
from cassandra_recovery.settings import ClusterConfig, Settings

log = logging.getLogger(__name__)

# (cluster id, incident id, trigger) of an incident this launcher just opened.
OnOpened = Callable[[str, str, Mapping[str, Any]], None]
# Starts the incident deployment: (parameters, idempotency key) -> the run's id.
StartRun = Callable[[Mapping[str, Any], str], str]
# (incident, trigger) of an escalated incident a new outage just joined: a person is paged (no run acts on it).
OnJoinedEscalated = Callable[[Incident, Mapping[str, Any]], None]


@dataclass
class IncidentLauncher:
    incidents: IncidentStore
    on_opened: OnOpened | None = None  # mitigation first (incident_launcher wires it)
    start_run: StartRun | None = None  # None: record incidents only (the detector's --no-deployment)
    on_joined_escalated: OnJoinedEscalated | None = None  # pages a person (incident_launcher wires it)

    def open_or_join(self, cluster_id: str, trigger: Mapping[str, Any], actor: str) -> tuple[Incident, bool]:
        """The cluster's open incident (joined) or a new one (opened, then mitigated); raises on PostgreSQL
        errors. A failed mitigation is logged, not raised: the incident is open and its run applies it."""
        incident, created = self.incidents.open_or_join(cluster_id, dict(trigger), actor)
        if created and self.on_opened is not None:
            self.on_opened(cluster_id, incident.id, trigger)
        elif incident.state is IncidentState.ESCALATED and self.on_joined_escalated is not None:
            self.on_joined_escalated(incident, trigger)
        return incident, created

    def start(self, cluster_id: str, trigger: Mapping[str, Any], key: str) -> str | None:
        """The incident deployment's run for this trigger (the same key gives the same run); None without an
        engine. Raises when it could not be started (the engine away): retry later."""
        if self.start_run is None:
            return None
        return self.start_run({"cluster_id": cluster_id, "trigger": dict(trigger)}, key)


def incident_launcher(
    settings: Settings,
    storage: MitigationStores,
    engine: Orchestrator | None,
    actor: str,
    say: Callable[[str], None] = log.info,
    cluster_of: Callable[[str], ClusterConfig] | None = None,
    warn: Callable[[str], None] = log.warning,
) -> IncidentLauncher:
    """The real launcher: the process's incident store, the mitigation policy of settings (or `cluster_of`, for a
    cluster the caller was given), the orchestrator."""
    config_of = cluster_of or settings.cluster

    def mitigate_first(cluster_id: str, incident_id: str, trigger: Mapping[str, Any]) -> None:
        nodes = [str(n) for n in trigger.get("nodes") or []]
        try:
            done = mitigate_opened_incident(storage, config_of(cluster_id), incident_id, nodes, actor)
            say(f"incident {incident_id}: {done}")
        except Exception as e:  # noqa: BLE001 - a PostgreSQL blip: the incident is open and its run applies it
            say(
                f"incident {incident_id}: mitigation not applied by the {actor} ({type(e).__name__}: {e}); its run will"
            )

    def start_run(parameters: Mapping[str, Any], key: str) -> str:
        assert engine is not None  # noqa: S101 - only wired with an engine
        return engine.start_incident(parameters, key).id

    def page_person(incident: Incident, trigger: Mapping[str, Any]) -> None:
        nodes = ", ".join(str(n) for n in trigger.get("nodes") or []) or "unnamed nodes"
        why = f"a new outage joined it while it is escalated ({nodes}, from {trigger.get('source', '?')})"
        try:
            cluster = config_of(incident.cluster_id)
            page(settings, storage.incidents, cluster, incident.id, join_page_key(trigger), why, actor)
        except Exception as e:  # noqa: BLE001 - the trigger is accepted whatever paging does; the error is logged
            warn(f"incident {incident.id}: page not sent ({type(e).__name__}: {e})")

    return IncidentLauncher(storage.incidents, mitigate_first, None if engine is None else start_run, page_person)
