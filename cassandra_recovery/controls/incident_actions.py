"""What a person does to an incident from the CLI, on its timeline with who did it (OS user@host).

`ack`: a person owns the incident; the automation goes on. `escalate`: the automation stops acting on it at once
(the person seizes the lease: the acting run is refused at its next write) and it waits for people; what it applied
(the degraded policy, the repair pause) stays in force until someone hands it back or closes it."""

from __future__ import annotations

import getpass
import socket

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.incident.store import Event, Incident, IncidentStore
from cassandra_recovery.logic.incident_states import IncidentState

SEIZED_TTL_S = 60.0  # a person's lease lasts as long as the command that took it


def cli_actor() -> str:
    """Who acts from this shell: the OS user at this host (what the timeline records for the CLI)."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _note(text: str, what: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= 500:
        raise ConfigError(f"{what} must be 1 to 500 characters")
    return text


def _open(store: IncidentStore, incident_id: str) -> Incident:
    inc = store.get(incident_id)
    if inc.closed_at is not None:
        raise ConfigError(f"incident {incident_id} is closed ({inc.state.value})")
    return inc


def acknowledge(store: IncidentStore, incident_id: str, actor: str, note: str = "") -> Event:
    """A person owns the incident from now on (pages about it stop); nothing about the automation changes."""
    _open(store, incident_id)
    return store.append_event(incident_id, "acknowledged", actor, {"note": note.strip()[:500]})


def escalate(store: IncidentStore, incident_id: str, actor: str, reason: str) -> Incident:
    """The incident to people now, whatever run is acting on it (that run is fenced out)."""
    why = _note(reason, "--reason")
    inc = _open(store, incident_id)
    if inc.state is IncidentState.ESCALATED:
        raise ConfigError(f"incident {incident_id} is already escalated")
    lease = store.seize_lease(incident_id, actor, SEIZED_TTL_S, f"escalated by a person: {why}")
    try:
        current = store.get(incident_id).state  # stable now: no run can move it any more
        data = {"reason": why, "by": actor, "level": "person"}
        return store.transition(incident_id, current, IncidentState.ESCALATED, lease, data)
    finally:
        store.release_lease(lease)
