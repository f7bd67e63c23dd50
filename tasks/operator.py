"""Thin tasks over the incident actions a person takes (incident_actions.py), for the operator flows of the UI."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.incident_actions import acknowledge, escalate, hand_back, resolve
from cassandra_recovery.storage.facade import process_storage


@task(name="incident-acknowledge", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def ack_incident(incident_id: str, actor: str, note: str) -> str:
    """The event's time."""
    return acknowledge(process_storage().incidents, incident_id, actor, note).at.isoformat()


@task(name="incident-escalate", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def escalate_incident(incident_id: str, actor: str, reason: str) -> str:
    """The incident's state after."""
    return escalate(process_storage().incidents, incident_id, actor, reason).state.value


@task(name="incident-hand-back", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def hand_back_incident(incident_id: str, actor: str, note: str) -> tuple[str, str, int]:
    """(cluster, state after, the fencing token of the person's move): the caller starts the run."""
    inc, lease = hand_back(process_storage().incidents, incident_id, actor, note)
    return inc.cluster_id, inc.state.value, lease.token


@task(name="incident-resolve", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def resolve_incident(incident_id: str, actor: str, note: str, unverified: bool) -> str:
    """The incident's state after."""
    return resolve(process_storage(), incident_id, actor, note, unverified).state.value
