"""What a person does to an incident from the CLI, on its timeline with who did it (OS user@host).

`ack`: a person owns the incident; the automation goes on. `escalate`: the automation stops acting on it at once
(the person seizes the lease: the acting run is refused at its next write) and it waits for people; what it applied
(the degraded policy, the repair pause) stays in force until someone hands it back or closes it. `hand_back`: an
escalated incident goes back to the automation (assessed again by a new run). `resolve`: a person closes it and
gives back what it applied; without a converged verification as its last one, only when told so (recorded)."""

from __future__ import annotations

import getpass
import socket

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.incident.store import Event, Incident, IncidentStore, Lease
from cassandra_recovery.logic.escalated import HELD, RELEASED
from cassandra_recovery.logic.incident_states import ALLOWED, IncidentState
from cassandra_recovery.logic.mitigation_state import mitigation_in_force
from cassandra_recovery.mitigation.apply import MitigationStores, give_back

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


def hold_repairs(store: IncidentStore, incident_id: str, actor: str, reason: str, release: bool = False) -> Event:
    """A person's explicit hold on routine repair while the incident is open (or its release). Without one, an
    escalated incident gives way to routine repair once repair age nears gc_grace_seconds."""
    _open(store, incident_id)
    why = _note(reason, "--reason")
    return store.append_event(incident_id, RELEASED if release else HELD, actor, {"by": actor, "reason": why})


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


def hand_back(store: IncidentStore, incident_id: str, actor: str, note: str) -> tuple[Incident, Lease]:
    """An escalated incident back to the automation: assessing again, for the run the caller starts next (the
    watchdog in `serve` starts one if none is). Returns it and the lease the person held for the move."""
    why = _note(note, "--note")
    inc = _open(store, incident_id)
    if inc.state is not IncidentState.ESCALATED:
        raise ConfigError(f"only an escalated incident is handed back; {incident_id} is {inc.state.value}")
    lease = store.seize_lease(incident_id, actor, SEIZED_TTL_S, f"handed back by a person: {why}")
    try:
        data = {"note": why, "by": actor, "level": "person"}
        return store.transition(incident_id, IncidentState.ESCALATED, IncidentState.ASSESSING, lease, data), lease
    finally:
        store.release_lease(lease)


def last_verdict(events: list[Event]) -> str | None:
    """The verdict of the incident's last verification pass, if it had one."""
    verdicts = [e.data.get("verdict") for e in events if e.kind == "verified"]
    return str(verdicts[-1]) if verdicts else None


def resolve(storage: MitigationStores, incident_id: str, actor: str, note: str, unverified: bool = False) -> Incident:
    """A person closes the incident, whatever run was acting on it (fenced out), and gives back the degraded policy
    and the repair pause it applied. Refused unless its last verification converged or `unverified` says the person
    closes it without that proof (both recorded)."""
    store = storage.incidents
    why = _note(note, "--note")
    _open(store, incident_id)
    verdict = last_verdict(store.events(incident_id))
    if verdict != "converged" and not unverified:
        raise ConfigError(
            f"the last verification of {incident_id} is {verdict or 'none'}: nothing proves every replica equal to the "
            "source of truth; pass --unverified to close it all the same (recorded on the timeline)"
        )
    lease = store.seize_lease(incident_id, actor, SEIZED_TTL_S, f"resolved by a person: {why}")
    try:
        current = store.get(incident_id).state
        if IncidentState.RESOLVED not in ALLOWED[current]:  # mid-recovery: to people first, then closed
            data = {"reason": f"closed by a person: {why}", "by": actor, "level": "person"}
            current = store.transition(incident_id, current, IncidentState.ESCALATED, lease, data).state
        events = store.events(incident_id)
        if mitigation_in_force({"kind": e.kind, "data": e.data} for e in events) is not None:
            inc = store.get(incident_id)
            lifted = give_back(
                storage, inc.cluster_id, incident_id, f"resolved by {actor}: {why}", lease, by_person=True
            )
            store.append_event(incident_id, "mitigation_lifted", actor, lifted, lease)
        closed: dict[str, object] = {"note": why, "by": actor, "level": "person", "last_verdict": verdict}
        closed["unverified"] = verdict != "converged"
        return store.transition(incident_id, current, IncidentState.RESOLVED, lease, closed)
    finally:
        store.release_lease(lease)
