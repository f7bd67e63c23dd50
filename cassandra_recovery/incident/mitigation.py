"""The reversible mitigation of an incident (degraded read policy, scheduled repairs paused), shared by whoever
applies it first: the detector when it opens the incident, or the incident's run."""

from __future__ import annotations

from typing import Any

from cassandra_recovery.degraded.policy import Mode
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.storage.facade import Storage


def apply_mitigation(
    storage: Storage, cluster_id: str, incident_id: str, reason: str, actor: str, lease: Lease | None = None
) -> dict[str, Any]:
    """Critical reads from PostgreSQL, others at ONE, scheduled repairs paused; `mitigation_started` and
    `mitigated` on the timeline (fenced by the lease when the caller holds one)."""
    incidents = storage.incidents
    incidents.append_event(incident_id, "mitigation_started", actor, {"reason": reason}, lease)
    policy = storage.policy.set(
        cluster_id, Mode.DEGRADED, reason, f"incident/{incident_id}", "ONE", True, incident_id=incident_id
    )
    pause = storage.pauses.pause(cluster_id, f"incident {incident_id}: {reason}", actor, incident_id)
    doc: dict[str, Any] = {"policy": policy.mode.value, "read_consistency": policy.read_consistency}
    doc |= {"repairs_paused": True, "pause_owner": pause.incident_id, "by": actor}
    incidents.append_event(incident_id, "mitigated", actor, doc, lease)
    return doc
