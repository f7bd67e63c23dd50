"""The reversible mitigation of an incident (degraded read policy, scheduled repairs paused), shared by whoever
applies it first: the detector when it opens the incident, or the incident's run."""

from __future__ import annotations

from typing import Protocol

from cassandra_recovery.contracts import MitigationDoc, PolicyChangeDoc, ReaperStepDoc
from cassandra_recovery.controls.killswitch import AutomationStopped, KillSwitch
from cassandra_recovery.degraded.policy import Mode, PolicyStore
from cassandra_recovery.incident.store import IncidentStore, Lease
from cassandra_recovery.logic.automation import may_act
from cassandra_recovery.mitigation.pauses import RepairPauses
from cassandra_recovery.mitigation.reaper import Reaper, configured_reaper, pause_reaper, resume_reaper
from cassandra_recovery.settings import ClusterConfig


class MitigationStores(Protocol):
    """The stores mitigation reads and writes (the process's storage.facade.Storage has them all): named here so
    that mitigation, and the detector and receiver that apply it, do not depend on the facade of every store."""

    @property
    def incidents(self) -> IncidentStore: ...

    @property
    def policy(self) -> PolicyStore: ...

    @property
    def pauses(self) -> RepairPauses: ...

    @property
    def kill_switch(self) -> KillSwitch: ...


def apply_mitigation(
    storage: MitigationStores,
    cluster_id: str,
    incident_id: str,
    reason: str,
    actor: str,
    lease: Lease | None = None,
    reaper: Reaper | None = None,
) -> MitigationDoc:
    """Critical reads from PostgreSQL, others at ONE, scheduled repairs paused, and the cluster's Reaper (`reaper`,
    else the registry's) paused too; `mitigation_started`, the Reaper steps and `mitigated` on the timeline (fenced
    by the lease when the caller holds one). Reaper failing is reported in the doc, never raised."""
    incidents = storage.incidents
    fence = None if lease is None else incidents.fence(lease)
    incidents.append_event(incident_id, "mitigation_started", actor, {"reason": reason}, lease)
    policy = storage.policy.set(
        cluster_id, Mode.DEGRADED, reason, f"incident/{incident_id}", "ONE", True, incident_id, fence, stoppable=True
    )
    pause = storage.pauses.pause(cluster_id, f"incident {incident_id}: {reason}", actor, incident_id, fence)
    doc: MitigationDoc = {"policy": policy.mode.value, "read_consistency": policy.read_consistency,
                          "repairs_paused": True, "pause_owner": pause.incident_id, "by": actor}  # fmt: skip
    if (reaper := reaper or configured_reaper(cluster_id)) is not None:
        doc["reaper"] = pause_reaper(reaper, lambda k, d: incidents.append_event(incident_id, k, actor, d, lease))
    incidents.append_event(incident_id, "mitigated", actor, doc, lease)
    return doc


def mitigate_opened_incident(
    storage: MitigationStores, cluster: ClusterConfig, incident_id: str, nodes: list[str], actor: str
) -> str:
    """Mitigation first, by whoever confirms a failure and opens its incident (the detector, the receiver): in the
    same round, before any run exists (so nothing can race the restore of a run). Never below the `act` level or
    with the kill switch set. Returns what was done, for the caller's log; raises on PostgreSQL errors (the
    incident is open, and its run then applies the mitigation itself)."""
    if not may_act(cluster.automation):
        return f"automation level {cluster.automation}: no mitigation"
    if stop := storage.kill_switch.stopped(cluster.id):
        return f"automation stopped ({stop.reason}): no mitigation"
    reason = f"seen down: {', '.join(nodes) or 'unnamed nodes'}: reversible mitigation first ({actor})"
    try:
        doc = apply_mitigation(storage, cluster.id, incident_id, reason, actor)
    except AutomationStopped as e:  # set since the read above: the fenced read in the policy change saw it
        storage.incidents.append_event(incident_id, "automation_stopped", actor, dict(e.as_doc()))
        return f"{e}: no mitigation"
    return f"mitigated ({doc['policy']} policy, scheduled repairs paused)"


def give_back(
    storage: MitigationStores,
    cluster_id: str,
    incident_id: str,
    reason: str,
    lease: Lease,
    reaper: Reaper | None = None,
    by_person: bool = False,
) -> PolicyChangeDoc:
    """The normal policy back and the repair pause this incident set lifted (another owner's pause stays), and what
    it paused in Reaper resumed, fenced by the lease, and refused under the kill switch unless a person does it; the
    caller records `mitigation_lifted` with what this returns."""
    fence, why = storage.incidents.fence(lease), f"lifted by incident {incident_id}: {reason}"
    policy = storage.policy.set(cluster_id, Mode.NORMAL, why, lease.holder, fence=fence, stoppable=not by_person)
    lifted = storage.pauses.resume(cluster_id, incident_id, fence)
    doc: PolicyChangeDoc = {"policy": policy.mode.value, "repairs_resumed": lifted, "reason": reason}
    if (step := give_back_reaper(storage, cluster_id, incident_id, lease, reaper)) is not None:
        doc["reaper"] = step
    return doc


def give_back_reaper(
    storage: MitigationStores, cluster_id: str, incident_id: str, lease: Lease, reaper: Reaper | None = None
) -> ReaperStepDoc | None:
    """Resume the Reaper schedules and runs this incident paused (its timeline names them); None without a Reaper."""
    if (reaper := reaper or configured_reaper(cluster_id)) is None:
        return None
    events = [{"kind": e.kind, "data": e.data} for e in storage.incidents.events(incident_id)]
    incidents = storage.incidents
    return resume_reaper(reaper, events, lambda k, d: incidents.append_event(incident_id, k, lease.holder, d, lease))
